"""Child process of the resume test: one Phase-1 thread on a SQLite checkpointer.

    python phase1_resume_child.py RUN_DIR CALL_LOG SLOW_JUDGE

Every model call appends ``start <role>`` / ``end <role>`` to CALL_LOG; with SLOW_JUDGE=1
judge 2 never finishes (the parent kills the process while it waits).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from phase1_oracle import PLAN, YES, oracle_generator_reply  # noqa: E402

from apigen_mt.graphs.context import RunContext  # noqa: E402
from apigen_mt.graphs.phase1 import build_phase1_graph  # noqa: E402
from apigen_mt.runner import open_checkpointer, run_threads  # noqa: E402
from apigen_mt.testing import ScriptedChatModel  # noqa: E402


def main() -> None:
    run_dir, log_path, slow = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

    def logged(role, reply, hang=False):
        async def call(messages):
            with open(log_path, "a") as log:
                log.write(f"start {role}\n")
            if hang:
                await asyncio.sleep(600)
            with open(log_path, "a") as log:
                log.write(f"end {role}\n")
            return reply(messages) if callable(reply) else reply

        return call

    models = {
        "generator": ScriptedChatModel([logged("generator", oracle_generator_reply)] * 3),
        "reviewers": [ScriptedChatModel([logged(f"judge{i}", YES, slow and i == 2)] * 3) for i in range(3)],
        "feedback": ScriptedChatModel([logged("feedback", PLAN)] * 3),
    }
    context = RunContext(chat_models=models)

    async def go():
        async with open_checkpointer(run_dir) as saver:
            compiled = build_phase1_graph().compile(checkpointer=saver)
            request = {"domain": "retail", "blueprint_id": "bp-7", "seed": 7}
            [outcome] = await run_threads(compiled, [("phase1:bp-7", request)], {}, context=context)
        print(json.dumps({"ok": outcome.ok, "resumed": outcome.resumed, "error": outcome.error,
                          "status": (outcome.values or {}).get("status"),
                          "blueprint": (outcome.values or {}).get("blueprint")}))

    asyncio.run(go())


if __name__ == "__main__":
    main()
