"""Example domain: a public library (members, books and copies, loans, fines).

It is the template for custom domains: copy this folder into your own package, change the
data, the policy, the tools and the rules, and point apigen-mt at it with
``--domain mypkg.mydomain``. See README.md here for the steps.

The files: ``data.json`` (the pristine state), ``policy.md`` (what the assistant must
follow), ``domain.py`` (the tools), ``rules.py`` (the policy as checks over a trace),
``examples.jsonl`` (hand-written blueprints for few-shot prompts).
"""

from pathlib import Path

from apigen_mt.domains.simple import SimpleDomain

from . import domain as _tools
from .rules import RULES

HERE = Path(__file__).parent

DOMAIN = SimpleDomain(
    "library",
    description="a public library: members, books and copies, loans, fines",
    tools=_tools,  # every @tool function of domain.py, in the order they are defined
    data=HERE / "data.json",
    policy=HERE / "policy.md",
    rules=RULES,
    persona_set="library",  # domains/personas/library.json
    examples=HERE / "examples.jsonl",
    user_table="members",  # the data sampler draws members; user_context() adds their loans/fines
    today=_tools.TODAY,  # the policy's fixed "today": dates relative to it are derivable
    free_text_arguments={"transfer_to_librarian": ("summary",)},  # not traced to the user's words
    confirmed_writes=True,  # "get the member's explicit confirmation (yes) to proceed"
    identification_tools=("find_member_by_email",),  # "verify the member's identity ... with their email"
)


def get_domain() -> SimpleDomain:
    """The domain (the registry's entry point; ``DOMAIN`` alone is enough for a user module)."""
    return DOMAIN


__all__ = ["DOMAIN", "get_domain"]
