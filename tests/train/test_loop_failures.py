"""Failures of ``jaxdac train`` that keep what was good: a diverging run stops naming the step and keeps the
last good checkpoint, a full disk keeps the previous checkpoint, bad command lines are one line before any
work. Real processes on the small dataset of tests/train/conftest.py."""

from __future__ import annotations

import json

from train_runs import jaxdac, python_child


def test_a_diverging_run_stops_naming_the_step_and_keeps_the_last_good_checkpoint(tmp_path, dataset, env, tiny_yml):
    run = tmp_path / "diverged"
    proc = jaxdac("train", "--config", tiny_yml, "--data", dataset, "--output", run, "--steps", 6,
                  "--set", "schedule.checkpoint_freq=1", "--set", "generator/AdamW.lr=1e30",  # step 1 is finite, the generator it leaves is not
                  env=env, check=False)
    assert proc.returncode == 1
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("jaxdac: error: step ") and (" is nan" in line or " is inf" in line), line
    step = int(line.split("step ")[1].split(":")[0])
    assert f"checkpoint {step - 1} (" in line and "is kept" in line
    assert sorted(int(p.name) for p in (run / "checkpoints").iterdir() if p.name.isdigit())[-1] == step - 1


def test_bad_command_lines_are_one_line_before_any_work(tmp_path, dataset, env, tiny_yml):
    cases = [
        (["--config", tiny_yml, "--data", dataset, "--set", "schedule.num_iters=0"], "schedule: num_iters must be"),
        (["--config", tiny_yml, "--data", tmp_path / "nowhere"], "nowhere"),
        (["--config", tiny_yml, "--data", dataset, "--set", "data.batch_size=3", "--set", "step.oops=1"],
         "unknown key step.oops"),
        (["--preset", "tiny"], "no training data: pass --data"),
        (["--resume"], "holds no run to resume"),
        (["--config", tiny_yml, "--data", dataset, "--init-weights", tmp_path / "none.pth"], "none.pth"),
    ]
    for args, message in cases:
        proc = jaxdac("train", *args, "--output", tmp_path / "run", env=env, check=False, timeout=300)
        assert proc.returncode != 0, args
        assert message in proc.stderr and proc.stderr.strip().count("\n") == 0, (args, proc.stderr[-1500:])
        assert not (tmp_path / "run" / "checkpoints").exists()


FULL_DISK_RUN = """
import errno, json, sys
from jaxdac.cli import enable_compilation_cache
from jaxdac.train import loop
enable_compilation_cache()
from jaxdac.train.config import load_config
config = load_config(sys.argv[1], overrides=["data.train={'all': ['%s']}" % sys.argv[2],
                                             "schedule.checkpoint_freq=1", "schedule.valid_freq=100"])
saves = []
real_save = loop.Checkpoints.save
def save(self, state, data_state, meta, val_mel):
    saves.append(meta["step"])
    if meta["step"] == 2:
        raise OSError(errno.ENOSPC, "No space left on device")
    return real_save(self, state, data_state, meta, val_mel)
loop.Checkpoints.save = save
try:
    loop.run(config, sys.argv[3], num_iters=4, progress=False)
except loop.TrainingError as e:
    print(json.dumps({"saves": saves, "error": str(e)}))
"""


def test_a_full_disk_while_saving_keeps_the_previous_checkpoint(tmp_path, dataset, env, tiny_yml):
    # In a process of its own with the shared compilation cache (the tiny programs compiled once).
    run = tmp_path / "run"
    out = json.loads(python_child(FULL_DISK_RUN, tiny_yml, dataset, run, env=env, devices=1).stdout.splitlines()[-1])
    assert out["saves"] == [1, 2]
    assert out["error"].startswith("checkpoint 2 could not be written (the disk is full); checkpoint 1 is kept")
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.name.isdigit()) == ["1"]
