"""apigen-mt: verified multi-turn function-calling data (the APIGen-MT method) on LangGraph."""

__version__ = "0.1.0"
