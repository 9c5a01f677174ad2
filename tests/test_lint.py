"""The linter is part of the tests: `ruff check` over the code (configuration in pyproject.toml)."""

import shutil
import subprocess
import sys
from pathlib import Path

from conftest import REPO


def test_ruff_is_clean():
    ruff = Path(sys.executable).parent / "ruff"
    exe = str(ruff) if ruff.exists() else shutil.which("ruff")
    assert exe, "ruff is in the dev extra: make setup installs it"
    result = subprocess.run([exe, "check", "src", "tests", "tools", "benchmarks", "assets"], cwd=REPO,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
