"""Child process of the Phase-2 resume test: one conversation on a SQLite checkpointer.

    python phase2_resume_child.py RUN_DIR CALL_LOG HANG

Each model call appends ``<role> <n>`` (its position in the conversation) to CALL_LOG;
with HANG=1 the assistant's second call never returns (the parent kills the process).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from langchain_core.messages import ToolMessage  # noqa: E402
from phase2_oracle import oracle_assistant_reply, oracle_user_reply  # noqa: E402
from test_phase2_graph import BP  # noqa: E402

from apigen_mt.api import arun_phase2  # noqa: E402
from apigen_mt.testing import ScriptedChatModel  # noqa: E402


def main() -> None:
    run_dir, log_path, hang = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

    def logged(role, reply):
        async def call(messages):
            step = sum(1 for m in messages if isinstance(m, ToolMessage)) if role == "assistant" else len(messages)
            with open(log_path, "a") as log:
                log.write(f"{role} {step}\n")
            if hang and role == "assistant" and step == 1:
                await asyncio.sleep(600)
            return reply(messages)

        return call

    models = {
        "user": ScriptedChatModel([logged("user", oracle_user_reply(BP))] * 10),
        "assistant": ScriptedChatModel([logged("assistant", oracle_assistant_reply(BP))] * 10),
    }
    result = asyncio.run(arun_phase2([BP], chat_models=models, run_dir=run_dir, settings={"best_of_n": 1}))
    print(json.dumps({"accepted": len(result.trajectories), "errors": result.errors,
                      "trajectory": result.trajectories[0] if result.trajectories else None}))


if __name__ == "__main__":
    main()
