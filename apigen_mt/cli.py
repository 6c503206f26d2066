"""The ``apigen-mt`` command line.

Each subcommand is a small function over the library; nothing here is needed to use
apigen-mt programmatically.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from apigen_mt import __version__
from apigen_mt.domains.base import DomainError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except DomainError as error:
        print(f"apigen-mt: error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. piped into `head`
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apigen-mt",
        description="Generate verified multi-turn function-calling data (APIGen-MT).",
    )
    parser.add_argument("--version", action="version", version=f"apigen-mt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("domains", help="list the available domains with their tool counts")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_domains)

    p = sub.add_parser("import-tau2", help="write tau2-bench tasks as blueprints (JSONL)")
    p.add_argument("--domain", required=True, choices=["retail", "airline"])
    p.add_argument("--split", required=True, choices=["train", "test"])
    p.add_argument("--out", required=True, type=Path, help="output .jsonl file")
    p.set_defaults(handler=cmd_import_tau2)

    p = sub.add_parser(
        "validate",
        help="run the format, execution and policy checks on blueprints (JSONL)",
        description="One JSON line per blueprint: {id, passed, stage, reasons, diff}; stage is "
        "the first failing stage (format, execution, policy) or ok.",
    )
    p.add_argument("file", type=Path, help="blueprints, one JSON object per line")
    p.add_argument("--domain", required=True, help="a built-in domain name or a module path")
    p.add_argument("--out", type=Path, help="write results here instead of standard output")
    p.add_argument(
        "--fail-on-reject", action="store_true", help="exit with status 1 if any blueprint fails"
    )
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser("graph", help="the API dependency graph of a domain (text, DOT or GraphML)")
    p.add_argument("--domain", required=True, help="a built-in domain name or a module path")
    p.add_argument("--format", choices=["text", "dot", "graphml"], default="text")
    p.add_argument("--out", type=Path, help="write here instead of standard output (required for graphml)")
    p.add_argument("--walks", type=int, default=0, metavar="N", help="also print N sample random walks")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_graph)

    p = sub.add_parser("context", help="what the generator would be shown: one sampled context (JSON)")
    p.add_argument("--domain", required=True, help="a built-in domain name or a module path")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=cmd_context)

    from apigen_mt.configuration import add_config_arguments

    p = sub.add_parser(
        "doctor",
        help="check every role's model, the domains and the run directory",
        description="Sends one tiny request to each configured role's model, builds the domains, "
        "checks that the run directory is writable and the LLM cache readable, and prints a table. "
        "Exit status 1 on any problem.",
    )
    add_config_arguments(p)
    p.add_argument("--domain", action="append", default=[], metavar="NAME", dest="check_domains",
                   help="check only this domain (repeatable; default: every built-in domain)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds each model may take to answer (default 60)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(handler=cmd_doctor)

    p = sub.add_parser(
        "generate",
        help="run Phase 1 and/or Phase 2 into a run directory (resumable)",
        description="Phase 1 makes verified blueprints, Phase 2 verified conversations. Everything "
        "goes into --run-dir: checkpoints, the run store, blueprints.jsonl, dataset.openai.jsonl, "
        "config.json. Interrupted? Run the same command again: finished steps are reused.",
    )
    add_config_arguments(p, run_dir=False)
    p.add_argument("--domain", help="a built-in domain name or a module path (Phase 1)")
    p.add_argument("--blueprints", type=int, default=10, metavar="N", help="blueprint requests (default 10)")
    p.add_argument("--run-dir", type=Path, required=True, metavar="DIR", help="the run directory")
    p.add_argument("--phase", choices=["1", "2", "all"], default="all")
    p.add_argument("--mode", choices=["llm", "grounded", "mixed"], default="llm", help="how Phase 1 proposes actions")
    p.add_argument("--concurrency", type=int, default=8, help="blueprints or conversations at once (default 8)")
    p.add_argument("--seed", type=int, default=0, help="the first seed of the blueprint requests")
    p.add_argument("--max-rounds", type=int, help="Phase-1 feedback rounds (default: 3 retail, 5 airline, else 3)")
    p.add_argument("--best-of-n", type=int, default=4, help="user-message candidates per turn in Phase 2 (default 4)")
    p.add_argument("--blueprints-file", type=Path, metavar="FILE", help="Phase 2 on these blueprints (JSONL)")
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser("export", help="write a run's verified conversations in a trainer's format")
    p.add_argument("run_dir", type=Path, metavar="DIR")
    p.add_argument("--format", choices=["openai", "sharegpt"], required=True)
    p.add_argument("--out", type=Path, required=True, help="output .jsonl file")
    p.add_argument("--include-contaminated", action="store_true",
                   help="also export conversations of blueprints flagged as near-copies of benchmark test tasks")
    p.set_defaults(handler=cmd_export)
    return parser


# -- domains ---------------------------------------------------------------------------------
def cmd_domains(args: argparse.Namespace) -> int:
    from apigen_mt.domains.registry import BUILTIN, get_domain

    rows = []
    for name, (_, summary) in BUILTIN.items():
        try:
            domain = get_domain(name)
        except DomainError as error:
            rows.append({"name": name, "summary": summary, "error": str(error)})
            continue
        counts = domain.tool_counts()
        rows.append({"name": name, "summary": summary, "tools": len(domain.tools), **counts})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'domain':<18} {'tools':>5} {'read':>5} {'write':>5} {'other':>5}  description")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<18} {'-':>5} {'-':>5} {'-':>5} {'-':>5}  unavailable: {row['error']}")
        else:
            print(
                f"{row['name']:<18} {row['tools']:>5} {row['read']:>5} {row['write']:>5} "
                f"{row['other']:>5}  {row['summary']}"
            )
    print("\nA custom domain is used by its module path: --domain mypkg.mydomain "
          "(template: domains/library).")
    return 0


# -- import-tau2 ---------------------------------------------------------------------------------
def cmd_import_tau2(args: argparse.Namespace) -> int:
    from apigen_mt.domains.tau2bench.tasks import tau2_blueprints

    blueprints = tau2_blueprints(args.domain, args.split)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with _atomic_writer(args.out) as handle:
        for blueprint in blueprints:
            handle.write(json.dumps(blueprint.to_json(), ensure_ascii=False) + "\n")
    print(f"wrote {len(blueprints)} {args.domain} {args.split} blueprints to {args.out}", file=sys.stderr)
    return 0


# -- validate ----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.checks.validate import validate_blueprint
    from apigen_mt.tools.jsonl import read_jsonl

    if not args.file.is_file():
        raise DomainError(f"no such file: {args.file}")
    if args.out and args.out.resolve() == args.file.resolve():
        raise DomainError(f"--out {args.out} is the input file: choose another path")
    domain = get_domain(args.domain)
    stages: Counter[str] = Counter()
    rejected: list[str] = []
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
    # Results are written and flushed line by line: an interrupted run keeps what it did.
    with args.out.open("w", encoding="utf-8") if args.out else _stdout() as out:
        for number, raw, error in read_jsonl(args.file):
            if error is not None:
                row = {"id": None, "passed": False, "stage": "format", "reasons": [error], "diff": None}
            else:
                row = validate_blueprint(domain, raw).to_json()
                if not row["passed"]:
                    row["reasons"] = [f"line {number}: {reason}" for reason in row["reasons"]]
            row["line"] = number
            stages[row["stage"]] += 1
            if not row["passed"]:
                rejected.append(f"  {row['id'] or '-'} [{row['stage']}] {row['reasons'][0]}")
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            out.flush()
    total = sum(stages.values())
    summary = ", ".join(f"{stage} {stages[stage]}" for stage in ("ok", "format", "execution", "policy") if stages[stage])
    print(f"validated {total} blueprints against {domain.name}: {summary or 'none'}"
          + (f"; results in {args.out}" if args.out else ""), file=sys.stderr)
    if rejected:
        shown = rejected[:5] + ([f"  ... and {len(rejected) - 5} more"] if len(rejected) > 5 else [])
        print("rejected:\n" + "\n".join(shown), file=sys.stderr)
    return 1 if args.fail_on_reject and stages["ok"] < total else 0


# -- graph and context -------------------------------------------------------------------------
def cmd_graph(args: argparse.Namespace) -> int:
    import random

    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.api_graph import api_graph, describe, random_walk, to_dot, to_graphml

    graph = api_graph(get_domain(args.domain))
    if args.format == "graphml":
        if not args.out:
            raise DomainError("--format graphml needs --out FILE.graphml")
        to_graphml(graph, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        text = describe(graph) if args.format == "text" else to_dot(graph)
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n", encoding="utf-8")
        else:
            print(text)
    stats = graph.stats()
    print(f"{stats['nodes']} tools ({stats['reads']} read, {stats['writes']} write), {stats['edges']} edges, "
          f"{stats['pruned']} pruned; entry points: {', '.join(stats['entry_points'])}", file=sys.stderr)
    rng = random.Random(args.seed)
    for _ in range(args.walks):
        walk = random_walk(graph, rng)
        print("walk: " + (" -> ".join(walk) if walk else "(none possible)"), file=sys.stderr)
    return 0


def cmd_context(args: argparse.Namespace) -> int:
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.samplers.context import sample_context

    print(json.dumps(sample_context(get_domain(args.domain), args.seed), indent=2, ensure_ascii=False, default=str))
    return 0


# -- doctor ------------------------------------------------------------------------------------
def cmd_doctor(args: argparse.Namespace) -> int:
    """Every problem becomes a FAIL row (never a traceback); exit 1 if there is one."""
    import tempfile

    from apigen_mt.configuration import ConfigurationError, config_from_args
    from apigen_mt.domains.registry import BUILTIN, get_domain
    from apigen_mt.llm.cache import CacheCorruptError, ResponseCache
    from apigen_mt.llm.factory import probe_models
    from apigen_mt.llm.tracing import tracing_status

    rows: list[dict[str, str]] = []

    def add(check: str, status: str, detail: str) -> None:
        rows.append({"check": check, "status": status, "detail": detail})

    try:
        config = config_from_args(args)
    except ConfigurationError as error:
        add("configuration", "FAIL", str(error))
        return _doctor_report(rows, args.json)
    add("configuration", "ok", "from " + ", ".join(config.sources))
    for probe in probe_models(config, timeout=args.timeout):
        add(f"model {probe.role}", "ok" if probe.ok else "FAIL", f"{probe.model}: {probe.detail}")
    for name in args.check_domains or list(BUILTIN):
        try:
            domain = get_domain(name)
            add(f"domain {name}", "ok", f"{len(domain.tools)} tools")
        except Exception as error:  # noqa: BLE001 - a broken domain is a row, not a crash
            add(f"domain {name}", "FAIL", f"{type(error).__name__}: {error}")
    try:
        config.run_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=config.run_dir, prefix=".doctor-", delete=True) as probe_file:
            probe_file.write(b"ok")
            probe_file.flush()
        add("run directory", "ok", f"{config.run_dir} is writable")
    except OSError as error:
        add("run directory", "FAIL", f"{config.run_dir}: {error}")
    if not config.cache.enabled:
        add("llm cache", "info", "off")
    elif not config.cache_path.exists():
        add("llm cache", "ok", f"{config.cache_path} (created at the first cached call)")
    else:
        try:
            with ResponseCache(config.cache_path) as cache:
                add("llm cache", "ok", f"{config.cache_path}: {cache.check()}")
        except CacheCorruptError as error:
            add("llm cache", "FAIL", str(error))
    limits = config.budget
    add("llm budget", "info", ", ".join(
        f"{name}={'unlimited' if value is None else value}"
        for name, value in (("max_calls", limits.max_calls), ("max_tokens", limits.max_tokens))))
    add("langsmith", "info", tracing_status().detail)
    return _doctor_report(rows, args.json)


def _doctor_report(rows: list[dict[str, str]], as_json: bool) -> int:
    failed = sum(row["status"] == "FAIL" for row in rows)
    if as_json:
        print(json.dumps({"ok": not failed, "checks": rows}, indent=2))
    else:
        width = max(len(row["check"]) for row in rows)
        print(f"{'check':<{width}}  status  detail")
        for row in rows:
            detail = row["detail"].replace("\n", "\n" + " " * (width + 10))
            print(f"{row['check']:<{width}}  {row['status']:<6}  {detail}")
        print(f"\n{failed} problem{'s' if failed != 1 else ''} found." if failed else "\nAll checks passed.")
    return 1 if failed else 0


# -- helpers -------------------------------------------------------------------------------------
class _atomic_writer:
    """Write to ``path.tmp`` and rename on success, so a crash never leaves half a file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")

    def __enter__(self) -> TextIO:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.tmp.open("w", encoding="utf-8")
        return self.handle

    def __exit__(self, kind: Any, *_: Any) -> None:
        self.handle.close()
        if kind is None:
            self.tmp.replace(self.path)
        else:
            self.tmp.unlink(missing_ok=True)


class _stdout:
    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *_: Any) -> None:
        sys.stdout.flush()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


# -- generate / export -----------------------------------------------------------------------
def _blueprints_from(path: Path) -> list[dict[str, Any]]:
    from apigen_mt.tools.jsonl import read_jsonl

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


def cmd_generate(args: argparse.Namespace) -> int:
    from apigen_mt.api import run_phase1, run_phase2
    from apigen_mt.configuration import ConfigurationError, config_from_args
    from apigen_mt.export import to_openai, write_jsonl
    from apigen_mt.store import RunStore, StoreError

    if args.phase in ("1", "all") and not args.domain:
        print("apigen-mt: error: --domain is required for Phase 1", file=sys.stderr)
        return 2
    if args.phase == "2" and args.blueprints_file is None and not (args.run_dir / "store.sqlite").exists():
        print("apigen-mt: error: Phase 2 needs --blueprints-file or a run directory with Phase-1 results", file=sys.stderr)
        return 2
    try:
        args.run_dir.mkdir(parents=True, exist_ok=True)
        config = config_from_args(args).model_copy(update={"run_dir": args.run_dir})
        store = RunStore(args.run_dir)
    except (ConfigurationError, StoreError, OSError) as error:
        print(f"apigen-mt: error: {error}", file=sys.stderr)
        return 2
    settings = {k: getattr(args, k) for k in ("domain", "blueprints", "phase", "mode", "concurrency", "seed", "max_rounds", "best_of_n")}
    (args.run_dir / "config.json").write_text(json.dumps({"configuration": config.public_dict(), "generate": settings}, indent=2))
    try:
        if args.phase in ("1", "all"):
            phase1 = {"max_rounds": args.max_rounds} if args.max_rounds else {}
            print(f"phase 1: {args.blueprints} blueprint requests for {args.domain} ({args.mode}) ...", flush=True)
            p1 = run_phase1(args.domain, args.blueprints, mode=args.mode, seed=args.seed, concurrency=args.concurrency,
                            run_dir=args.run_dir, configuration=config, settings=phase1)
            store.save_phase1(p1)
            kept = write_jsonl(store.accepted_blueprints(), args.run_dir / "blueprints.jsonl")
            summary = p1.summary()
            print(f"phase 1: {kept} blueprints kept, {summary['rejected']} rejected "
                  f"(by stage: {summary['rejected_by_stage']}), {summary['errors']} unfinished", flush=True)
            _print_errors(p1.errors)
            if p1.contamination:
                print(f"phase 1: {len(p1.contamination)} kept blueprint(s) look like benchmark test tasks; "
                      "they are flagged and left out of exports", flush=True)
        if args.phase in ("2", "all"):
            blueprints = _blueprints_from(args.blueprints_file) if args.blueprints_file else store.accepted_blueprints()
            print(f"phase 2: {len(blueprints)} blueprints ...", flush=True)
            p2 = run_phase2(blueprints, concurrency=args.concurrency, run_dir=args.run_dir, configuration=config,
                            settings={"best_of_n": args.best_of_n})
            store.save_phase2(p2)
            summary = p2.summary()
            count = write_jsonl((to_openai(t) for t in store.trajectories()), args.run_dir / "dataset.openai.jsonl")  # unflagged
            print(f"phase 2: {count} verified conversations, {summary['failed_conversations']} failed "
                  f"(by stop: {summary['failed_by_stop']}), {summary['errors']} unfinished", flush=True)
            _print_errors(p2.errors)
    except KeyboardInterrupt:
        print(f"\ninterrupted: run the same command again to resume; finished steps are kept in {args.run_dir}",
              file=sys.stderr)
        return 130
    except (ValueError, ConfigurationError) as error:
        print(f"apigen-mt: error: {error}", file=sys.stderr)
        return 2
    print(f"run directory: {args.run_dir}")
    for name in ("blueprints.jsonl", "dataset.openai.jsonl", "store.sqlite"):
        if (args.run_dir / name).exists():
            print(f"  {args.run_dir / name}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from apigen_mt.export import FORMATS, write_jsonl
    from apigen_mt.store import STORE_FILE, RunStore, StoreError

    if not (args.run_dir / STORE_FILE).exists():
        print(f"apigen-mt: error: {args.run_dir} has no {STORE_FILE}: run `apigen-mt generate` first", file=sys.stderr)
        return 2
    try:
        store = RunStore(args.run_dir)
        rows = store.trajectories(include_contaminated=args.include_contaminated)
        count = write_jsonl((FORMATS[args.format](t) for t in rows), args.out)
        flagged = store.counts()["flagged_as_test_contamination"]
    except StoreError as error:
        print(f"apigen-mt: error: {error}", file=sys.stderr)
        return 2
    print(f"{count} conversations written to {args.out} ({args.format})")
    if flagged and not args.include_contaminated:
        print(f"left out: the conversations of {flagged} blueprint(s) flagged as near-copies of benchmark test tasks "
              "(--include-contaminated keeps them)")
    return 0
