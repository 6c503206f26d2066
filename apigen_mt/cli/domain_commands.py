"""Commands about domains and blueprints: domains, import-tau2, validate, graph, context."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any, TextIO

from apigen_mt.domains.base import DomainError
from apigen_mt.tools.atomic_file import replacing


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
        states = domain.state_pool()
        rows.append({"name": name, "summary": summary, "tools": len(domain.tools), **counts, "states": len(states) or 1})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'domain':<18} {'tools':>5} {'read':>5} {'write':>5} {'other':>5} {'states':>6}  description")
    for row in rows:
        if "error" in row:
            print(f"{row['name']:<18} {'-':>5} {'-':>5} {'-':>5} {'-':>5} {'-':>6}  unavailable: {row['error']}")
        else:
            print(
                f"{row['name']:<18} {row['tools']:>5} {row['read']:>5} {row['write']:>5} "
                f"{row['other']:>5} {row['states']:>6}  {row['summary']}"
            )
    print("\nstates: the initial states Phase 1 draws each blueprint's from (BFCL: each state its entries "
          "load the class in, as bfcl.<class>@<entry id>).")
    print("A custom domain is used by its module path: --domain mypkg.mydomain "
          "(template: domains/library).")
    return 0


# -- import-tau2 ---------------------------------------------------------------------------------
def cmd_import_tau2(args: argparse.Namespace) -> int:
    from apigen_mt.domains.tau2bench.tasks import tau2_blueprints

    blueprints = tau2_blueprints(args.domain, args.split)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(args.out) as handle:
        for blueprint in blueprints:
            handle.write(json.dumps(blueprint.to_json(), ensure_ascii=False) + "\n")
    print(f"wrote {len(blueprints)} {args.domain} {args.split} blueprints to {args.out}", file=sys.stderr)
    return 0


def _check_file_and_out(args: argparse.Namespace) -> None:
    """The input exists and ``--out`` (whose folder is made) is not the input."""
    if not args.file.is_file():
        raise DomainError(f"no such file: {args.file}")
    if args.out and args.out.resolve() == args.file.resolve():
        raise DomainError(f"--out {args.out} is the input file: choose another path")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)


# -- validate ----------------------------------------------------------------------------------
def cmd_validate(args: argparse.Namespace) -> int:
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.checks.validate import validate_blueprint
    from apigen_mt.tools.jsonl import read_jsonl

    _check_file_and_out(args)
    domain = get_domain(args.domain)
    stages: Counter[str] = Counter()
    rejected: list[str] = []
    # Results are written and flushed line by line: an interrupted run keeps what it did.
    with args.out.open("w", encoding="utf-8") if args.out else stdout_writer() as out:
        for number, raw, error in read_jsonl(args.file):
            if error is not None:
                row = {"id": None, "passed": False, "stage": "format", "reasons": [error], "diff": None}
            else:
                row = validate_blueprint(domain, raw, grounding=args.grounding).to_json()
                if not row["passed"]:
                    row["reasons"] = [f"line {number}: {reason}" for reason in row["reasons"]]
            row["line"] = number
            stages[row["stage"]] += 1
            if not row["passed"]:
                rejected.append(f"  {row['id'] or '-'} [{row['stage']}] {row['reasons'][0]}")
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            out.flush()
    total = sum(stages.values())
    summary = ", ".join(f"{stage} {stages[stage]}" for stage in ("ok", "format", "execution", "policy", "grounding") if stages[stage])
    print(f"validated {total} blueprints against {domain.name}: {summary or 'none'}"
          + (f"; results in {args.out}" if args.out else ""), file=sys.stderr)
    if rejected:
        shown = rejected[:5] + ([f"  ... and {len(rejected) - 5} more"] if len(rejected) > 5 else [])
        print("rejected:\n" + "\n".join(shown), file=sys.stderr)
    return 1 if args.fail_on_reject and stages["ok"] < total else 0


# -- audit -------------------------------------------------------------------------------------
def cmd_audit(args: argparse.Namespace) -> int:
    """One JSON line per conversation: ``{id, passed, failed_checks, reasons}`` (tools/audit)."""
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.audit.checks import AUDIT_CHECKS, audit_rows

    _check_file_and_out(args)
    domain = get_domain(args.domain)
    failed: Counter[str] = Counter()
    total = passed = 0
    shown: list[str] = []
    with args.out.open("w", encoding="utf-8") if args.out else stdout_writer() as out:
        for row in audit_rows(domain, args.file):
            total += 1
            passed += row["passed"]
            failed.update(row["failed_checks"])
            if not row["passed"] and len(shown) < 5:
                shown.append(f"  {row['id']}: {row['reasons'][0]}")
            out.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
            out.flush()
    checks = ", ".join(f"{check} {failed[check]}" for check in ("format", *AUDIT_CHECKS) if failed[check])
    print(f"audited {total} conversations against {domain.name}: passed {passed}"
          + (f"; failed {checks}" if checks else "") + (f"; results in {args.out}" if args.out else ""), file=sys.stderr)
    if shown:
        print("failed:\n" + "\n".join(shown + ([f"  ... and {total - passed - len(shown)} more"] if total - passed > len(shown) else [])),
              file=sys.stderr)
    return 1 if args.fail_on_reject and passed < total else 0


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


def cmd_check_domain(args: argparse.Namespace) -> int:
    """Exit status 0 when every check passes, 1 when one fails, 2 for a domain that cannot load."""
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.domain_check import check_domain

    report = check_domain(get_domain(args.domain), cheap=args.quick, samples=args.samples, seed=args.seed)
    print(json.dumps(report.to_json(), indent=2) if args.json else report.render())
    return 0 if report.ok else 1


def cmd_context(args: argparse.Namespace) -> int:
    from apigen_mt.domains.registry import get_domain
    from apigen_mt.tools.samplers.context import sample_context

    print(json.dumps(sample_context(get_domain(args.domain), args.seed), indent=2, ensure_ascii=False, default=str))
    return 0


class stdout_writer:
    """Standard output as a context manager, like the --out file it stands in for."""

    def __enter__(self) -> TextIO:
        return sys.stdout

    def __exit__(self, *_: Any) -> None:
        sys.stdout.flush()
