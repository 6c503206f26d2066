"""One prompt file per LLM role, loaded by name and overridable. Built with the agents."""
