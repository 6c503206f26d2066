"""``apigen-mt generate`` and ``resume``: run the phases into a run directory.

The run directory is the unit a user handles: checkpoints (LangGraph), the run store,
the files trainers read, the report, and ``config.json`` (the resolved configuration
without secrets, and the command that made the run, so ``resume`` can finish it).
Everything written is keyed so that running again after an interruption reuses what
was finished and never duplicates a row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from apigen_mt.cli.errors import fail, os_error_text

CONFIG_FILE = "config.json"
EXIT_UNFINISHED = 3
"""``generate``'s status when some items did not finish (all that did is written; resume the rest)."""


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    from apigen_mt.configuration import add_config_arguments

    add_config_arguments(p, run_dir=False)
    p.add_argument("--domain", help="a built-in domain name or a module path (Phase 1)")
    p.add_argument("--blueprints", type=int, default=10, metavar="N", help="blueprint requests (default 10)")
    p.add_argument("--run-dir", type=Path, required=True, metavar="DIR", help="the run directory")
    p.add_argument("--phase", choices=["1", "2", "all"], default="all")
    p.add_argument("--mode", choices=["llm", "grounded", "mixed"], default="llm", help="how Phase 1 proposes actions")
    p.add_argument("--concurrency", type=int, default=8, help="blueprints or conversations at once (default 8)")
    p.add_argument("--seed", type=int, default=0, help="the first seed of the blueprint requests")
    p.add_argument("--max-rounds", type=int, help="Phase-1 feedback rounds (default: 3 retail, 5 airline, else 3)")
    p.add_argument("--no-grounding", dest="grounding", action="store_false",
                   help="skip Phase 1's grounding stage (for a domain whose values the rules cannot trace)")
    p.add_argument("--best-of-n", type=int, default=4, help="user-message candidates per turn in Phase 2 (default 4)")
    p.add_argument("--blueprints-file", type=Path, metavar="FILE", help="Phase 2 on these blueprints (JSONL)")
    p.add_argument("--no-report", action="store_true", help="do not write the report at the end")
    p.add_argument("--database-url", metavar="URL",
                   help="run on this Postgres database: the work items become jobs for workers (`apigen-mt worker`); "
                   "default $APIGEN_MT_DATABASE_URL, else database_url in the TOML file; one database per run")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default with --database-url: one per core; 0: remote workers only); "
                   "without --database-url an embedded Postgres is started in the run directory")
    p.add_argument("--progress", choices=["auto", "live", "lines", "off"], default="auto",
                   help="live panel on a terminal, plain lines elsewhere (auto), or force one")


def _blueprints_from(path: Path) -> list[dict[str, Any]]:
    from apigen_mt.tools.jsonl import read_jsonl

    if not path.is_file():
        raise ValueError(f"no such blueprints file: {path}")
    blueprints = []
    for line, value, error in read_jsonl(path):
        if error is not None:
            raise ValueError(f"{path}:{line}: {error}")
        blueprints.append(value)
    return blueprints


def _print_errors(errors: dict[str, str], most: int = 3) -> None:
    for item, error in list(errors.items())[:most]:
        print(f"  unfinished {item}: {error[:300]}", flush=True)
    if len(errors) > most:
        print(f"  ... and {len(errors) - most} more (the run store's errors table has them all)", flush=True)


def _public_argv(argv: list[str]) -> list[str]:
    """The command as typed, with credentials and query strings cut out of --base-url URLs
    and the password out of --database-url (a resume then needs them again: pass them after
    the run directory, or the password in $PGPASSWORD)."""
    from apigen_mt.cluster.database import public_database_url

    redact = {"--base-url": _redact_role_url, "--database-url": public_database_url}
    public, next_flag = [], None
    for item in argv:
        flag, sep, value = item.partition("=")
        if next_flag is not None:
            item = redact[next_flag](item)
        elif sep and flag in redact:
            item = f"{flag}={redact[flag](value)}"
        next_flag = item if item in redact else None
        public.append(item)
    return public


def _redact_role_url(value: str) -> str:
    from apigen_mt.configuration import redact_url

    role, sep, url = value.partition("=")
    if sep and "://" not in role:
        return f"{role}={redact_url(url)}"
    return str(redact_url(value))


def _progress(args: argparse.Namespace, phase: int, total: int) -> Any:
    from apigen_mt.progress import PhaseProgress

    live = {"auto": None, "live": True, "lines": False, "off": False}[args.progress]
    return PhaseProgress(phase, total, live=live, interval=10.0 if args.progress != "off" else float("inf"))


def _roles(args: argparse.Namespace) -> set[str]:
    """The roles this generate command calls."""
    from apigen_mt.llm.preflight import phase_roles

    roles = phase_roles(1) if args.phase in ("1", "all") else set()
    return roles | (phase_roles(2, args.best_of_n) if args.phase in ("2", "all") else set())


def cmd_generate(args: argparse.Namespace) -> int:
    """Exit status: 0 when every item finished (kept or rejected), 2 for a usage or
    configuration error (a model that cannot be built included: found before any work),
    :data:`EXIT_UNFINISHED` when items did not finish, 130 after Ctrl-C."""
    from apigen_mt.cluster.database import DatabaseError
    from apigen_mt.configuration import ConfigurationError, config_from_args
    from apigen_mt.domains.registry import get_domain, is_builtin
    from apigen_mt.llm.preflight import model_problems
    from apigen_mt.store import STORE_FILE, RunStore, StoreError
    from apigen_mt.tools.domain_check import cheap_problems

    if args.phase in ("1", "all") and not args.domain:
        return fail("--domain is required for Phase 1")
    if args.phase == "2" and args.blueprints_file is None and not (args.run_dir / STORE_FILE).exists():
        return fail("Phase 2 needs --blueprints-file or a run directory with Phase-1 results")
    try:
        config = config_from_args(args).model_copy(update={"run_dir": args.run_dir})
    except ConfigurationError as error:
        return fail(str(error))
    problems = model_problems(config, _roles(args))
    if problems:
        return fail("a model this run needs cannot be used (nothing was run):\n  " + "\n  ".join(problems)
                      + "\n`apigen-mt doctor` checks every role.")
    if args.phase in ("1", "all") and not is_builtin(args.domain):
        problems = cheap_problems(get_domain(args.domain))  # a module that cannot load: DomainError, exit 2
        if problems:
            return fail(f"domain {args.domain} is not fit to generate from (nothing was run):\n  " + "\n  ".join(problems)
                        + f"\n`apigen-mt check-domain {args.domain}` runs every check.")
    try:
        args.run_dir.mkdir(parents=True, exist_ok=True)
        store = RunStore(args.run_dir)
    except StoreError as error:
        return fail(str(error))
    except OSError as error:
        return fail(os_error_text(error))
    settings = {k: getattr(args, k) for k in ("domain", "blueprints", "phase", "mode", "concurrency", "seed", "max_rounds", "best_of_n", "grounding")}
    argv = _public_argv(list(getattr(args, "argv", None) or []))
    (args.run_dir / CONFIG_FILE).write_text(json.dumps({
        "configuration": config.public_dict(), "generate": settings, "argv": argv, "cwd": os.getcwd(),
    }, indent=2))
    session = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"
    store.add_event(session, "started", argv=argv)
    phase = None
    try:
        with _cluster(args, config) as cluster:
            if args.phase in ("1", "all"):
                phase = "phase1"
                _generate_phase1(args, config, store, session, cluster)
            if args.phase in ("2", "all"):
                phase = "phase2"
                _generate_phase2(args, config, store, session, cluster)
    except KeyboardInterrupt:
        store.add_event(session, "interrupted", phase=phase)
        print(f"\ninterrupted: finished steps are kept in {args.run_dir}; to finish the run:\n"
              f"  apigen-mt resume {args.run_dir}", file=sys.stderr)
        return 130
    except (ValueError, ConfigurationError, DatabaseError) as error:
        store.add_event(session, "failed", phase=phase, error=str(error))
        return fail(str(error))
    unfinished = store.counts()["errors"]
    if not args.no_report:
        _write_report(args.run_dir)
    print(f"run directory: {args.run_dir}")
    for name in ("blueprints.jsonl", "dataset.openai.jsonl", "report/report.md", "report/report.html", STORE_FILE):
        if (args.run_dir / name).exists():
            print(f"  {args.run_dir / name}")
    if unfinished:
        print(f"{unfinished} item(s) did not finish; after fixing the cause: apigen-mt resume {args.run_dir}")
        return EXIT_UNFINISHED
    return 0


def _generate_phase1(args: argparse.Namespace, config: Any, store: Any, session: str, cluster: Any) -> None:
    """Phase 1 with the progress display and the live store, then its files and summary."""
    from apigen_mt.api import phase1_result, run_phase1
    from apigen_mt.export import write_jsonl
    from apigen_mt.live_store import LiveStoreWriter
    from apigen_mt.runner import Observers

    def save(live: Any, outcomes: Any) -> None:
        live.save_phase1(phase1_result(outcomes, args.domain), partial=True)

    settings = {"max_rounds": args.max_rounds} if args.max_rounds else {}
    if not args.grounding:
        settings["grounding"] = False
    print(f"phase 1: {args.blueprints} blueprint requests for {args.domain} ({args.mode}) ...", flush=True)
    with _progress(args, 1, args.blueprints) as progress, LiveStoreWriter(args.run_dir, f"{session}/phase1", "phase1", save) as live:
        result = run_phase1(args.domain, args.blueprints, mode=args.mode, seed=args.seed, concurrency=args.concurrency,
                            run_dir=args.run_dir, configuration=config, settings=settings,
                            observer=Observers(progress, live), cluster=cluster)
    store.save_phase1(result)
    kept = write_jsonl(store.accepted_blueprints(), args.run_dir / "blueprints.jsonl")
    summary = result.summary()
    store.add_event(session, "finished", phase="phase1", **summary)
    print(f"phase 1: {kept} blueprints kept, {summary['rejected']} rejected "
          f"(by stage: {summary['rejected_by_stage']}), {summary['errors']} unfinished", flush=True)
    _print_errors(result.errors)
    if result.contamination:
        print(f"phase 1: {len(result.contamination)} kept blueprint(s) look like benchmark test tasks; "
              "they are flagged and left out of exports", flush=True)


def _generate_phase2(args: argparse.Namespace, config: Any, store: Any, session: str, cluster: Any) -> None:
    """Phase 2 on the run's (or the given) blueprints, then the dataset file and summary."""
    from apigen_mt.api import phase2_result, run_phase2
    from apigen_mt.export import to_openai, write_jsonl
    from apigen_mt.live_store import LiveStoreWriter
    from apigen_mt.runner import Observers

    def save(live: Any, outcomes: Any) -> None:
        live.save_phase2(phase2_result(outcomes), partial=True)

    blueprints = _blueprints_from(args.blueprints_file) if args.blueprints_file else store.accepted_blueprints()
    print(f"phase 2: {len(blueprints)} blueprints ...", flush=True)
    with _progress(args, 2, len(blueprints)) as progress, LiveStoreWriter(args.run_dir, f"{session}/phase2", "phase2", save) as live:
        result = run_phase2(blueprints, concurrency=args.concurrency, run_dir=args.run_dir, configuration=config,
                            settings={"best_of_n": args.best_of_n}, observer=Observers(progress, live), cluster=cluster)
    store.save_phase2(result)
    summary = result.summary()
    store.add_event(session, "finished", phase="phase2", **summary)
    count = write_jsonl((to_openai(t) for t in store.trajectories()), args.run_dir / "dataset.openai.jsonl")  # unflagged
    print(f"phase 2: {count} verified conversations, {summary['failed_conversations']} failed "
          f"(by stop: {summary['failed_by_stop']}), {summary['errors']} unfinished", flush=True)
    _print_errors(result.errors)


def _cluster(args: argparse.Namespace, config: Any) -> Any:
    """The run's database and local workers for every phase, in cluster mode; else nothing
    (one process on SQLite)."""
    url = args.database_url or config.database_url
    if not url and args.workers is None:
        return contextlib.nullcontext()
    from apigen_mt.cluster.coordinator import LocalCluster

    return LocalCluster(config, run_dir=args.run_dir, database_url=url, workers=args.workers, concurrency=args.concurrency)


def _write_report(run_dir: Path) -> None:
    """The report is a view of the store: when it fails, the data is still all there."""
    try:
        from apigen_mt.report import write_report

        report = write_report(run_dir)
    except Exception as error:  # noqa: BLE001 - a broken report must not fail a finished run
        print(f"report: not written ({type(error).__name__}: {error}); `apigen-mt report {run_dir}` retries it",
              file=sys.stderr)
        return
    print(report.summary_text(), flush=True)


def cmd_resume(args: argparse.Namespace) -> int:
    """Run the directory's saved ``generate`` command again (from where it was typed)."""
    from apigen_mt.cli import build_parser

    path = args.run_dir / CONFIG_FILE
    if not path.is_file():
        return fail(f"{args.run_dir} has no {CONFIG_FILE}: it is not an `apigen-mt generate` run directory "
                      "(run the generate command with --run-dir to start one)")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        argv = [str(item) for item in saved["argv"]]
        if not argv or argv[0] != "generate":
            raise ValueError("the saved command is not a generate command")
    except (ValueError, KeyError, TypeError) as error:
        return fail(f"{path} cannot be read ({error}); run the original generate command again with "
                      f"--run-dir {args.run_dir}: it resumes from the checkpoints just the same")
    extra = [item for item in args.extra if item != "--"]
    run_dir = args.run_dir.resolve()
    command = [*argv, *extra, "--run-dir", str(run_dir)]
    print("resuming: apigen-mt " + " ".join(command), flush=True)
    cwd = Path(saved.get("cwd") or ".")
    with contextlib.chdir(cwd if cwd.is_dir() else Path.cwd()):  # relative --config / --blueprints-file paths
        try:
            resumed = build_parser().parse_args(command)
        except SystemExit as exit_:
            return int(exit_.code or 2)
        resumed.argv = [*argv, *extra]
        return cmd_generate(resumed)
