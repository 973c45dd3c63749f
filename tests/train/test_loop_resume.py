"""Exact resume: a run killed (SIGKILL) or stopped (SIGINT) and resumed computes bit for bit what the
uninterrupted run computes; a damaged newest checkpoint falls back to the one before; a run folder is never
overwritten. Real ``jaxdac train`` processes on the small dataset of tests/train/conftest.py."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from train_runs import JAXDAC, REPO, exported_weights, jaxdac, metrics, restore_arrays


SIX = ["--steps", 6, "--set", "schedule.checkpoint_freq=3", "--set", "schedule.valid_freq=4"]


@pytest.fixture(scope="session")
def straight(tmp_path_factory, dataset, env, tiny_yml):
    run = tmp_path_factory.mktemp("runs") / "straight"
    jaxdac("train", "--config", tiny_yml, "--data", dataset, "--output", run, *SIX, env=env)
    return run


def _start(run: Path, dataset: Path, tiny_yml: Path, env: dict) -> subprocess.Popen:
    args = ["train", "--config", tiny_yml, "--data", dataset, "--output", run, *SIX]
    return subprocess.Popen([*JAXDAC, *map(str, args)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, cwd=REPO)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 900):
    start = time.perf_counter()
    while not predicate():
        assert proc.poll() is None, f"the run ended early ({proc.returncode}): {proc.stderr.read()[-2000:]}"
        assert time.perf_counter() - start < timeout
        time.sleep(0.1)


def _assert_same_run(a: Path, b: Path) -> None:
    assert metrics(a) == metrics(b)  # every logged number, bit for bit (JSON floats round-trip exactly)
    for x, y in zip(restore_arrays(a / "checkpoints" / "6"), restore_arrays(b / "checkpoints" / "6"), strict=True):
        np.testing.assert_array_equal(x, y)
    # The exported tensors too (not the file's bytes: safetensors writes its metadata in hash order).
    wa, wb = exported_weights(a), exported_weights(b)
    assert wa.keys() == wb.keys()
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name], err_msg=name)


def test_resume_after_sigkill_is_bit_identical(straight, tmp_path, dataset, env, tiny_yml):
    run = tmp_path / "killed"
    proc = _start(run, dataset, tiny_yml, env)
    _wait_for(lambda: (run / "checkpoints" / "3" / "commit_success.txt").exists(), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = jaxdac("train", "--output", run, "--resume", env=env)
    assert "resumed at step 3" in resumed.stderr
    _assert_same_run(straight, run)


def test_sigint_saves_stops_cleanly_and_resumes_bit_identical(straight, tmp_path, dataset, env, tiny_yml):
    run = tmp_path / "interrupted"
    proc = _start(run, dataset, tiny_yml, env)
    _wait_for(lambda: (run / "metrics.jsonl").exists() and len(metrics(run, "train")) >= 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130, err[-2000:]
    stopped = json.loads((run / "tags.json").read_text())["latest"]
    assert 1 <= stopped < 6 and f"SIGINT: saved checkpoint {stopped} and stopped; continue with --resume" in err
    resumed = jaxdac("train", "--output", run, "--resume", env=env)
    assert f"resumed at step {stopped}" in resumed.stderr
    _assert_same_run(straight, run)


def test_a_damaged_latest_checkpoint_falls_back_to_the_one_before(straight, tmp_path, env):
    run = tmp_path / "damaged"
    shutil.copytree(straight, run)
    for path in (run / "checkpoints" / "6" / "state").rglob("*"):
        if path.is_file() and path.stat().st_size > 100:
            path.write_bytes(b"\0" * 16)  # every data file of the newest checkpoint wiped
    proc = jaxdac("train", "--output", run, "--resume", "--steps", 7, env=env)
    assert "checkpoint 6 cannot be read" in proc.stderr and "resuming from checkpoint 3 instead" in proc.stderr
    assert "resumed at step 3" in proc.stderr and f"to {run / 'damaged' / '6'}" in proc.stderr
    assert (run / "damaged" / "6" / "state").is_dir()  # set aside, not deleted
    assert [m["step"] for m in metrics(run, "train")] == list(range(1, 8))
    # Steps 4 to 6 were computed again from checkpoint 3: the same numbers as the first time.
    assert metrics(run, "train")[:6] == metrics(straight, "train")


def test_an_existing_run_is_not_overwritten_and_resume_takes_no_new_settings(straight, env, tiny_yml, dataset):
    proc = jaxdac("train", "--config", tiny_yml, "--data", dataset, "--output", straight, env=env, check=False)
    assert proc.returncode == 1 and "already holds a run; pass --resume" in proc.stderr
    proc = jaxdac("train", "--output", straight, "--resume", "--set", "data.batch_size=4", env=env, check=False)
    assert proc.returncode == 1 and "only --steps may change" in proc.stderr
