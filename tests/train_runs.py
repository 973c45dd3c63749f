"""Helpers of the ``jaxdac train`` tests (tests/train/test_loop_*.py): real ``jaxdac`` processes on the small
dataset of tests/train/conftest.py, and readers of what a run folder holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
JAXDAC = [sys.executable, "-m", "jaxdac"]
# The tiny preset at batch 2 with a short schedule: about a second per step on 2 cores.
TINY = """\
preset: tiny
data: {batch_size: 2, val_batch_size: 2, val_examples: 2, val_duration: 1.0}
schedule: {valid_freq: 50, sample_freq: 100, log_freq: 1}
"""


def need_tool(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} is not installed (.ci/run installs it)")
        pytest.skip(f"{tool} is not installed (apt-get install {tool})")
    return path


def jaxdac(*args, env, check=True, timeout=1800) -> subprocess.CompletedProcess:
    proc = subprocess.run([*JAXDAC, *map(str, args)], env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
    if check and proc.returncode != 0:
        raise AssertionError(f"jaxdac {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc


def metrics(run: Path, split: str | None = None) -> list[dict]:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [line for line in lines if split is None or line["split"] == split]


def restore_arrays(checkpoint: Path) -> list[np.ndarray]:
    """Every array of a checkpoint's state (parameters, optimiser states, step), without a target."""
    import jax
    import orbax.checkpoint as ocp

    with ocp.StandardCheckpointer() as checkpointer:
        tree = checkpointer.restore((checkpoint / "state").absolute())
    return [np.asarray(leaf) for leaf in jax.tree.leaves(tree)]


def python_child(code: str, *args, env: dict, devices: int, extra_env: dict | None = None, background=False):
    full = {**env, "XLA_FLAGS": f"--xla_force_host_platform_device_count={devices}", **(extra_env or {})}
    cmd = [sys.executable, "-c", code, *map(str, args)]
    if background:
        return subprocess.Popen(cmd, env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    proc = subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=1800, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def exported_weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(run / "export" / "weights.safetensors")
