"""``apigen-mt export`` and ``report``: what a run directory holds, for trainers and people."""

from __future__ import annotations

import argparse
from typing import Any

from apigen_mt.cli.errors import fail
from apigen_mt.store import STORE_FILE, RunStore, StoreError


def _open_store(run_dir: Any) -> RunStore:
    if not (run_dir / STORE_FILE).exists():
        raise StoreError(f"{run_dir} has no {STORE_FILE}: run `apigen-mt generate --run-dir {run_dir}` first")
    return RunStore(run_dir)


def cmd_export(args: argparse.Namespace) -> int:
    from apigen_mt.export import FORMATS, dpo_pairs, write_jsonl, write_tau2_tasks

    try:
        store = _open_store(args.run_dir)
        flagged = store.counts()["flagged_as_test_contamination"]
        if args.format == "tau2":
            if args.out.suffix != ".json":
                raise ValueError(f"--out {args.out}: a tau2 tasks file must end in .json (tau2 reads it by its suffix)")
            blueprints = store.accepted_blueprints(include_contaminated=args.include_contaminated)
            count = write_tau2_tasks(blueprints, args.out)
            what = "tau2-bench tasks"
        elif args.format == "bfcl":
            from apigen_mt.domains.bfcl.export import ANSWER_DIR, write_bfcl

            count, skipped = write_bfcl(store.trajectories(include_contaminated=args.include_contaminated), args.out)
            what = f"BFCL multi-turn entries (ground truth in {args.out.parent / ANSWER_DIR / args.out.name})"
            if skipped:
                print("bfcl: skipped " + ", ".join(f"{n} ({why})" for why, n in sorted(skipped.items())))
        elif args.format == "dpo":
            rows, stats = dpo_pairs(store.trajectories(accepted=None, include_contaminated=args.include_contaminated))
            count = write_jsonl(rows, args.out)
            what = "preference pairs"
            skipped = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k not in ("pairs", "emitted")) or "none"
            print(f"dpo: {stats['pairs']} accepted/failed pairs of the same blueprint, {stats['emitted']} split at an "
                  f"assistant turn; skipped: {skipped}")
        else:
            rows = store.trajectories(include_contaminated=args.include_contaminated)
            count = write_jsonl((FORMATS[args.format](t) for t in rows), args.out)
            what = "conversations"
    except (StoreError, ValueError) as error:
        return fail(error)
    print(f"{count} {what} written to {args.out} ({args.format})")
    if flagged and not args.include_contaminated:
        print(f"left out: {flagged} blueprint(s) flagged as near-copies of benchmark test tasks, and their "
              "conversations (--include-contaminated keeps them)")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from apigen_mt.report import write_report

    try:
        report = write_report(args.run_dir, args.out)  # says when DIR has no store
    except StoreError as error:
        return fail(error)
    print(report.summary_text())
    return 0
