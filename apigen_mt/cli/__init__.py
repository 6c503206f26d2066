"""The ``apigen-mt`` command line: the parser here, the commands in this package's modules.

Each subcommand is a small function over the library; nothing here is needed to use
apigen-mt programmatically.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from apigen_mt import __version__
from apigen_mt.cli.doctor import cmd_doctor
from apigen_mt.cli.errors import fail, os_error_text
from apigen_mt.cli.domain_commands import (
    cmd_audit,
    cmd_check_domain,
    cmd_context,
    cmd_domains,
    cmd_graph,
    cmd_import_tau2,
    cmd_validate,
)
from apigen_mt.cli.output_commands import cmd_export, cmd_report
from apigen_mt.cli.run_commands import add_generate_arguments, cmd_generate, cmd_resume
from apigen_mt.cli.worker_command import add_worker_arguments, cmd_worker
from apigen_mt.domains.base import DomainError
from apigen_mt.export import EXPORT_FORMATS

__all__ = ["build_parser", "main"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return args.handler(args)
    except DomainError as error:
        return fail(error)
    except BrokenPipeError:  # e.g. piped into `head`
        return 0
    except OSError as error:  # an unwritable --out, a full disk: one line, not a traceback
        return fail(os_error_text(error))


def build_parser() -> argparse.ArgumentParser:
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
    p.add_argument("--domain", required=True, choices=["retail", "airline", "telecom"])
    p.add_argument("--split", required=True, choices=["train", "test"])
    p.add_argument("--out", required=True, type=Path, help="output .jsonl file")
    p.set_defaults(handler=cmd_import_tau2)

    p = sub.add_parser(
        "validate",
        help="run the format, execution, policy and grounding checks on blueprints (JSONL)",
        description="One JSON line per blueprint: {id, passed, stage, reasons, diff}; stage is "
        "the first failing stage (format, execution, policy, grounding) or ok.",
    )
    p.add_argument("file", type=Path, help="blueprints, one JSON object per line")
    p.add_argument("--domain", required=True, help="a built-in domain name or a module path")
    p.add_argument("--out", type=Path, help="write results here instead of standard output")
    p.add_argument(
        "--fail-on-reject", action="store_true", help="exit with status 1 if any blueprint fails"
    )
    p.add_argument(
        "--no-grounding", dest="grounding", action="store_false", help="stop after the policy stage"
    )
    p.set_defaults(handler=cmd_validate)

    p = sub.add_parser(
        "audit",
        help="audit conversations (openai, sharegpt or tau2 results): grounding, policy, confirmation",
        description="One JSON line per conversation: {id, passed, failed_checks, reasons}. FILE is an openai "
        "export (JSONL of {messages, tools}), a sharegpt export (JSON array or JSONL of {conversations}) or a "
        "tau2-bench results file ({info, tasks, simulations}).",
    )
    p.add_argument("file", type=Path, help="the conversations")
    p.add_argument("--domain", required=True, help="the domain they were held in (a built-in name or a module path)")
    p.add_argument("--out", type=Path, help="write results here instead of standard output")
    p.add_argument("--fail-on-reject", action="store_true", help="exit with status 1 if any conversation fails")
    p.set_defaults(handler=cmd_audit)

    p = sub.add_parser(
        "check-domain",
        help="prove a domain fit to verify against: contract, examples, isolation, determinism, kinds, data",
        description="Runs the domain's examples and sampled calls on fresh environments: the tools' contract, "
        "the examples' validity, that no environment changes another (isolation), that a replay gives the same "
        "state and observations (determinism), that read tools never write and write tools do (kinds), and that "
        "references between tables resolve (data). Exit status 1 if a check fails.",
    )
    p.add_argument("domain", help="a built-in domain name or a module path")
    p.add_argument("--samples", type=int, default=12, metavar="N", help="grounded walks sampled besides the examples (default 12)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="only the cheap part: contract and examples")
    p.add_argument("--json", action="store_true", help="print JSON instead of a report")
    p.set_defaults(handler=cmd_check_domain)

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
        "config.json, report/. Interrupted? `apigen-mt resume DIR`: finished steps are reused.",
    )
    add_generate_arguments(p)
    p.set_defaults(handler=cmd_generate)

    p = sub.add_parser(
        "resume",
        help="finish an interrupted `generate` run (Ctrl-C, SIGKILL, budget, crash)",
        description="Runs the run directory's `generate` command again (from its config.json): "
        "finished graph steps and cached model answers are reused, nothing accepted is lost or "
        "duplicated. Extra flags after DIR are added to that command, e.g. --budget-calls 500.",
    )
    p.add_argument("run_dir", type=Path, metavar="DIR")
    p.add_argument("extra", nargs=argparse.REMAINDER, metavar="FLAGS", help="flags added to the saved command")
    p.set_defaults(handler=cmd_resume)

    p = sub.add_parser(
        "worker",
        help="run a cluster run's jobs on this machine until stopped (see README, Scaling out)",
        description="Takes jobs of the run in --database-url (started by `generate --database-url`) and runs "
        "them with this machine's domains and configuration, which must match the run's. SIGTERM or Ctrl-C "
        "stops it cleanly; a killed worker's jobs are retried by the others.",
    )
    add_worker_arguments(p)
    p.set_defaults(handler=cmd_worker)

    p = sub.add_parser("export", help="write a run's results in a trainer's or benchmark's format")
    p.add_argument("run_dir", type=Path, metavar="DIR")
    p.add_argument("--format", choices=EXPORT_FORMATS, required=True,
                   help="openai / sharegpt: verified conversations (JSONL); tau2: accepted blueprints as a "
                   "tau2-bench tasks.json; dpo: accepted vs failed conversations of one blueprint (JSONL); "
                   "bfcl: verified conversations of BFCL domains as BFCL multi-turn entries (--out FILE.json, "
                   "their ground truth in possible_answer/FILE.json beside it)")
    p.add_argument("--out", type=Path, required=True, help="output file")
    p.add_argument("--include-contaminated", action="store_true",
                   help="also export blueprints flagged as near-copies of benchmark test tasks")
    p.set_defaults(handler=cmd_export)

    p = sub.add_parser("report", help="a Markdown and HTML report with plots of what a run kept, dropped and cost")
    p.add_argument("run_dir", type=Path, metavar="DIR")
    p.add_argument("--out", type=Path, metavar="DIR", help="where the report goes (default: DIR/report)")
    p.set_defaults(handler=cmd_report)
    return parser



