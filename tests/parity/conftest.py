"""Live parity tests: run the original implementation in the reference environment and compare.

The original lives in its own virtual environment (torch, audiotools), built by
``bash scripts/install_reference.sh .venv-reference`` (about a minute). Tests here run under jaxdac's
environment and call the reference interpreter as a subprocess (``run_reference``), exchanging arrays
through .npz files. The interpreter is ``$JAXDAC_REFERENCE_PYTHON`` if set (and only that), else
``.venv-reference/bin/python`` in the repository. Without one the tests are skipped with a message
saying how to build it, unless ``JAXDAC_REQUIRE_REFERENCE=1`` (set by CI), which turns the skip into a
failure.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


INSTALL = "bash scripts/install_reference.sh .venv-reference"
MISSING = (f"no reference environment: build it with `{INSTALL}` (the original DAC on CPU torch, about a minute) "
           "or point $JAXDAC_REFERENCE_PYTHON at its interpreter")


def reference_python() -> Path | None:
    chosen = os.environ.get("JAXDAC_REFERENCE_PYTHON")
    path = Path(chosen) if chosen else REPO / ".venv-reference" / "bin" / "python"
    return path if path.exists() else None


def missing_message() -> str:
    chosen = os.environ.get("JAXDAC_REFERENCE_PYTHON")
    return f"{MISSING} (JAXDAC_REFERENCE_PYTHON={chosen} does not exist)" if chosen else MISSING


@pytest.fixture(scope="session")
def run_reference():
    """``run_reference(script, *args)`` runs a script under the original's interpreter and returns stdout.

    Scripts get ``tests/`` and ``scripts/`` on ``sys.path`` (for ``signals`` and shared recipes).
    """
    python = reference_python()
    if python is None:
        if os.environ.get("JAXDAC_REQUIRE_REFERENCE") == "1":
            pytest.fail(f"JAXDAC_REQUIRE_REFERENCE=1 but {missing_message()}")
        pytest.skip(missing_message())

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
