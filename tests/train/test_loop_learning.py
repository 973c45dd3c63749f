"""``jaxdac train`` learns on this CPU and logs what the original logs; ``jaxdac export`` writes weights that
``jaxdac encode`` reads. Real processes on the small dataset of tests/train/conftest.py."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from train_runs import jaxdac, metrics


@pytest.fixture(scope="session")
def trained(tmp_path_factory, dataset, env, tiny_yml):
    run = tmp_path_factory.mktemp("runs") / "tiny200"
    start = time.perf_counter()
    proc = jaxdac("train", "--config", tiny_yml, "--data", dataset, "--output", run, "--steps", 200, env=env)
    return run, proc, time.perf_counter() - start


def test_200_steps_on_this_cpu_learn_and_log_to_tensorboard(trained):
    run, proc, seconds = trained
    # The bad files were reported in one line, and training went on.
    assert "skipped 2 (1 too short, 1 unreadable)" not in proc.stderr  # 0.1 s is kept (padded), as the original
    assert "skipped 1 (1 unreadable)" in proc.stderr and "corrupt.wav" in proc.stderr
    val = metrics(run, "val")
    assert [v["step"] for v in val] == [1, 51, 101, 151, 200]
    first, last = val[0]["mel/loss"], val[-1]["mel/loss"]
    assert last < first - 0.5, (first, last)  # measured 7.61 -> 6.70 (README, Training)
    train = metrics(run, "train")
    assert [t["step"] for t in train] == list(range(1, 201))
    assert all(np.isfinite(list(t.values())[2:]).all() for t in train)

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run / "logs"), size_guidance={"scalars": 0, "audio": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    for name in ("mel/loss/train", "adv/disc_loss/train", "other/grad_norm/train", "loss/train",
                 "other/learning_rate/train", "mel/loss/val", "stft/loss/val", "waveform/loss/val"):
        assert name in tags["scalars"], name
    assert len(events.Scalars("mel/loss/train")) == 200
    assert events.Scalars("mel/loss/val")[-1].value == pytest.approx(last, rel=1e-6)
    assert {"recons/sample_0.wav", "signal/sample_0.wav"} <= set(tags["audio"])
    audio = events.Audio("recons/sample_0.wav")
    assert [a.step for a in audio] == [1, 101, 200] and audio[0].sample_rate == 44100
    assert {"recons/mel_0", "signal/mel_0"} <= set(tags["images"])
    image = events.Images("recons/mel_0")[-1]
    assert image.width > 10 and image.height == 128

    # The run folder a person can read.
    assert (run / "config.yml").is_file() and (run / "log.txt").read_text().count("validation at step") == 5
    tags_file = json.loads((run / "tags.json").read_text())
    assert tags_file["latest"] == 200 and tags_file["best"][0] in (1, 51, 101, 151, 200)
    assert (run / "export" / "weights.safetensors").is_file() and (run / "export" / "dac" / "weights.pth").is_file()
    print(f"200 tiny steps in {seconds:.0f} s; validation mel loss {first:.3f} -> {last:.3f}")


def test_export_writes_weights_that_jaxdac_encode_reads(trained, dataset, env, tmp_path):
    run, _, _ = trained
    out = tmp_path / "best"
    proc = jaxdac("export", run, out, "--tag", "best", env=env)
    assert proc.stdout.strip() == str(out)
    assert {"weights.safetensors", "dac"} <= {p.name for p in out.iterdir()}
    again = jaxdac("export", run, out, env=env, check=False)
    assert again.returncode == 1 and "exists (pass --overwrite" in again.stderr
    codes = tmp_path / "codes"
    jaxdac("encode", dataset / "speech_0.wav", "--weights", out / "weights.safetensors", "--output", codes, env=env)
    jaxdac("encode", dataset / "speech_1.wav", "--weights", out / "dac" / "weights.pth", "--output", codes, env=env)
    assert {p.name for p in codes.iterdir()} == {"speech_0.dac", "speech_1.dac"}
    bad = jaxdac("export", run, tmp_path / "x", "--tag", "77", env=env, check=False)
    assert bad.returncode == 1 and "no checkpoint at step 77" in bad.stderr and bad.stderr.count("\n") == 1
