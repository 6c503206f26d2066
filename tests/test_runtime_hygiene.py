"""Using the tau2 domains never imports litellm (it phones home) and prints no tau2 logs."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

SCRIPT = """
import sys
from apigen_mt.cli import main
from apigen_mt.domains.registry import get_domain
from apigen_mt.tools.api_graph import api_graph
from apigen_mt.tools.samplers.context import sample_context
from apigen_mt.tools.verifier import verify
for name in ("retail", "airline"):
    domain = get_domain(name)
    sample_context(domain, 0)
    api_graph(domain)
    bp = domain.example_blueprints()[0]
    verify(domain, bp, bp.actions, bp.outputs)
main(["import-tau2", "--domain", "retail", "--split", "test", "--out", sys.argv[1]])
main(["validate", sys.argv[1], "--domain", "retail", "--out", sys.argv[1] + ".out"])
print("LITELLM" if "litellm" in sys.modules else "CLEAN")
"""


def test_no_litellm_and_no_tau2_logging(tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path / "bp.jsonl")],
        capture_output=True, text=True, timeout=300, check=True,
    )
    assert result.stdout.strip().endswith("CLEAN")
    assert "| WARNING" not in result.stderr and "| INFO" not in result.stderr, result.stderr[-2000:]
