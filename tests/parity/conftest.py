"""Live parity tests: run the original implementation in the reference environment and compare.

The original lives in its own virtual environment (torch, audiotools), built by
``bash ../shared/reference/install.sh .venv-reference``. Tests here run under jaxdac's environment and
call the reference interpreter as a subprocess (``run_reference``), exchanging arrays through .npz files.
Without a reference environment they are skipped, unless ``JAXDAC_REQUIRE_REFERENCE=1`` (set by CI),
which turns the skip into a failure.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def reference_python() -> Path | None:
    candidates = [os.environ.get("JAXDAC_REFERENCE_PYTHON"), REPO / ".venv-reference" / "bin" / "python"]
    for c in candidates:
        if c and Path(c).exists():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def run_reference():
    """``run_reference(script, *args)`` runs a script under the original's interpreter and returns stdout.

    Scripts get ``tests/`` and ``scripts/`` on ``sys.path`` (for ``signals`` and shared recipes).
    """
    python = reference_python()
    if python is None:
        if os.environ.get("JAXDAC_REQUIRE_REFERENCE") == "1":
            pytest.fail("JAXDAC_REQUIRE_REFERENCE=1 but no reference environment was found")
        pytest.skip("no reference environment (bash ../shared/reference/install.sh .venv-reference)")

    def run(script: str | Path, *args: str, timeout: float = 1800) -> str:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts")])
        env.setdefault("OMP_NUM_THREADS", str(os.cpu_count() or 1))
        proc = subprocess.run(
            [str(python), str(script), *map(str, args)],
            capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"reference script {script} failed:\n{proc.stdout}\n{proc.stderr}")
        return proc.stdout

    return run


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/parity" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.parity)
