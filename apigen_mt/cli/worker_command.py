"""``apigen-mt worker``: run a cluster run's jobs on this machine (see :mod:`apigen_mt.cluster`)."""

from __future__ import annotations

import argparse
import asyncio
import os

from apigen_mt.cli.errors import fail


def add_worker_arguments(p: argparse.ArgumentParser) -> None:
    from apigen_mt.cluster.database import DATABASE_ENV
    from apigen_mt.configuration import add_config_arguments

    add_config_arguments(p, run_dir=False)
    p.add_argument("--database-url", metavar="URL",
                   help=f"the run's Postgres database (default: ${DATABASE_ENV}, else database_url in the TOML file)")
    p.add_argument("--concurrency", type=int, default=8, help="threads this worker runs at once (default 8)")
    p.add_argument("--name", help="the worker's name in logs and outcomes (default: host:pid)")
    p.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)  # local workers of a coordinator


def cmd_worker(args: argparse.Namespace) -> int:
    """Exit status: 0 after SIGTERM / Ctrl-C, 2 when the database or configuration is unfit."""
    from apigen_mt.cluster.database import DATABASE_ENV, DatabaseError
    from apigen_mt.cluster.worker import aserve
    from apigen_mt.configuration import ConfigurationError, config_from_args

    if args.concurrency < 1:
        return fail("--concurrency must be at least 1")
    if args.exit_with_parent:
        _stop_when_stdin_closes()
    _log_to_stderr()
    try:
        configuration = config_from_args(args)
        url = args.database_url or configuration.database_url
        if not url:
            return fail(f"--database-url (or ${DATABASE_ENV}, or database_url in the TOML file) is required: "
                        "the run's Postgres database")
        asyncio.run(aserve(url, concurrency=args.concurrency, configuration=configuration, name=args.name))
    except (DatabaseError, ConfigurationError) as error:
        return fail(str(error))
    except KeyboardInterrupt:
        return 0
    return 0


def _log_to_stderr() -> None:
    """The worker's own messages (start, waiting for a run, refusals), timestamped."""
    import logging

    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("apigen_mt.cluster")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _stop_when_stdin_closes() -> None:
    """A local worker stops (gracefully, as on SIGTERM) when its coordinator's pipe closes."""
    import signal
    import sys
    import threading

    def watch() -> None:
        while sys.stdin.buffer.read(1024):
            pass
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="apigen-mt-parent-watch", daemon=True).start()
