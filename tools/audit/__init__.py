"""The conversation audit: grounding, policy and confirmation of any dataset's conversations.

:mod:`.conversation` reads openai, sharegpt and tau2-bench results layouts into one shape;
:mod:`.checks` audits one conversation (``apigen-mt audit`` and Phase 2's acceptance use it).
"""
