"""Helpers of the SIGKILL-and-resume tests: start a child script, wait until its call log
shows the wanted lines, kill it with SIGKILL, run it again to completion."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).parent


def start_child(script: str, run_dir: Path, log: Path, hang: bool) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / script), str(run_dir), str(log), "1" if hang else "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def kill_when_logged(child: subprocess.Popen, log: Path, wanted: set[str], timeout: float = 120.0) -> list[str]:
    """Wait for every ``wanted`` line in ``log``, give the checkpoint writer a second, then
    SIGKILL the child. Returns the log's lines at that moment."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = log.read_text().splitlines() if log.exists() else []
        if wanted <= set(lines):
            break
        assert child.poll() is None, child.stderr.read()
        time.sleep(0.1)
    else:
        child.kill()
        pytest.fail(f"the child never logged {sorted(wanted)}")
    time.sleep(1.0)  # finished steps' checkpoints are written while the hung call waits
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    return log.read_text().splitlines()


def finish(child: subprocess.Popen, timeout: float = 120.0) -> str:
    """The child's last stdout line, after it exits successfully."""
    out, err = child.communicate(timeout=timeout)
    assert child.returncode == 0, err
    return out.strip().splitlines()[-1]
