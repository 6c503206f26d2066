"""LLM roles as pure functions over a chat model (graphs call them).

Phase 1: generator, reviewer (one committee member), feedback, recombiner.
Phase 2: simulated user (best-of-N + critic), assistant.
Each role has its prompt in ``apigen_mt.prompts`` (``<role>.md``) and returns a
``StructuredResult``: malformed model output never raises.
"""

from .feedback import FeedbackPlan, awrite_feedback, summarize_votes
from .generator import GeneratedBlueprint, agenerate_blueprint, to_blueprint
from .recombiner import CombinedInstruction, arecombine_instructions, combined_blueprint
from .reviewer import Review, areview_blueprint
from .assistant import aassistant_step
from .simulated_user import STOP_TOKEN, UserTurn, anext_user_message, auser_candidates, is_stop
from .user_critic import CandidateScores, CriticVerdict, ascore_candidates

__all__ = [
    # Phase 1
    "CombinedInstruction",
    "FeedbackPlan",
    "GeneratedBlueprint",
    "Review",
    "agenerate_blueprint",
    "areview_blueprint",
    "arecombine_instructions",
    "awrite_feedback",
    "combined_blueprint",
    "summarize_votes",
    "to_blueprint",
    # Phase 2
    "STOP_TOKEN",
    "CandidateScores",
    "CriticVerdict",
    "UserTurn",
    "aassistant_step",
    "anext_user_message",
    "ascore_candidates",
    "auser_candidates",
    "is_stop",
]
