"""Live: fine-tune the full-size 44.1 kHz model in jaxdac from a converted checkpoint and the original's
discriminator file, export, and load the result in the original and in ``jaxdac encode``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import signals

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


def jaxdac(*args, env):
    proc = subprocess.run([sys.executable, "-m", "jaxdac", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=3600, cwd=REPO)
    assert proc.returncode == 0, f"jaxdac {args[0]} failed:\n{proc.stderr[-3000:]}"
    return proc


@pytest.mark.slow
def test_finetune_from_converted_weights_and_original_discriminator(run_reference, tmp_path):
    env = {**os.environ, "JAXDAC_COMPILATION_CACHE": "off"}
    # The original writes seeded 44.1 kHz generator and discriminator files (no step taken).
    run_reference(HERE / "reference_train_run.py", "dac_44khz", 0, tmp_path / "original")
    jaxdac("convert", tmp_path / "original" / "dac" / "weights.pth", tmp_path / "converted.safetensors", env=env)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        x = signals.speech_like(44100, 2.0, i) if i % 2 else signals.music_like(44100, 2.0, i)
        sf.write(data / f"clip_{i}.wav", x.astype(np.float32), 44100)
    run = tmp_path / "run"
    proc = jaxdac("train", "--preset", "finetune_44khz", "--init-weights", tmp_path / "converted.safetensors",
                  "--init-discriminator", tmp_path / "original" / "discriminator" / "weights.pth", "--data", data,
                  "--output", run, "--steps", 2, "--set", "data.batch_size=2", "--set", "data.val_batch_size=2",
                  "--set", "data.val_examples=1", "--set", "data.val_duration=1.0", env=env)
    assert "generator from" in proc.stderr and "discriminator from" in proc.stderr
    export = run / "export"
    assert {"weights.safetensors", "dac", "discriminator"} <= {p.name for p in export.iterdir()}

    # The original loads both exported files strictly (every key used) and codes as jaxdac does.
    audio = (0.5 * signals.speech_like(44100, 1.0, 7))[None, None].astype(np.float32)
    np.save(export / "audio.npy", audio)
    run_reference(HERE / "reference_load_exported.py", export)
    theirs = np.load(export / "outputs.npz")
    from jaxdac.weights.load import load_model

    for weights in (export / "dac" / "weights.pth", export / "weights.safetensors"):
        codes = np.asarray(load_model(path=weights).encode(audio).codes)
        assert (codes == theirs["codes"]).mean() >= 0.999, weights  # float ties aside, identical codes
    coded = tmp_path / "coded"
    sf.write(tmp_path / "probe.wav", audio[0, 0], 44100)
    jaxdac("encode", tmp_path / "probe.wav", "--weights", export / "dac" / "weights.pth", "--output", coded, env=env)
    assert (coded / "probe.dac").is_file()
