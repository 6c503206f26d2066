"""``apigen-mt doctor``: is every model, domain and the run directory usable?"""

from __future__ import annotations

import argparse
import json


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


