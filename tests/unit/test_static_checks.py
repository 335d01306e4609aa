"""Lint, format and type checks as part of the suite, so `make test` and CI fail on them like on a test.

The tools run as subprocesses of this interpreter's environment (the test extras install them), on the same
paths as `make lint` and `make typecheck`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PATHS = ["lightfuse", "tests", "bench"]


def _tool(name: str) -> list[str]:
    # the venv's own script next to the interpreter, else `python -m <tool>`
    script = Path(sys.executable).with_name(name)
    if script.exists():
        return [str(script)]
    if shutil.which(name) is None:
        return [sys.executable, "-m", name]
    return [name]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_lint():
    result = _run(*_tool("ruff"), "check", *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = _run(*_tool("ruff"), "format", "--check", *PATHS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy():
    result = _run(*_tool("mypy"), "lightfuse")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_checks_see_errors(tmp_path):
    # each tool fails on a file that breaks its rule, so a passing run above means something
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nx: int = 'text'\ny = [1,2]\n")
    lint = _run(*_tool("ruff"), "check", "--isolated", "--select", "F401", str(bad))
    fmt = _run(*_tool("ruff"), "format", "--isolated", "--check", str(bad))
    types = _run(*_tool("mypy"), "--no-incremental", "--config-file", "/dev/null", str(bad))
    assert (lint.returncode, fmt.returncode, types.returncode) == (1, 1, 1), (
        lint.stdout,
        fmt.stdout,
        types.stdout,
    )
