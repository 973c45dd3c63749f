"""Fixtures of the ``jaxdac train`` tests: a small real dataset, the environment of the ``jaxdac`` processes
(the session's shared compilation cache, so each program compiles once however the test files are spread
over workers) and the tiny run config."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from train_runs import TINY, need_tool


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    """Three spoken sentences, two synthesised music clips, and one each of corrupt, silent and 0.1 s."""
    root = tmp_path_factory.mktemp("dataset")
    espeak, sox = need_tool("espeak-ng"), need_tool("sox")
    sentences = ["The quick brown fox jumps over the lazy dog, again and again.",
                 "Codecs turn audio into tokens for language models.",
                 "Training a neural audio codec takes a while on a small computer."]
    for i, text in enumerate(sentences):
        subprocess.run([espeak, "-s", str(140 + 20 * i), "-w", str(root / f"speech_{i}.wav"), text], check=True)
    subprocess.run([sox, "-n", "-r", "44100", str(root / "music_0.wav"), "synth", "3", "pluck", "C4", "pluck", "E4",
                    "pluck", "G4"], check=True)
    subprocess.run([sox, "-n", "-r", "22050", "-c", "2", str(root / "music_1.wav"), "synth", "4", "sine", "220",
                    "sine", "330", "tremolo", "5"], check=True)
    sf.write(root / "silent.wav", np.zeros(44100 * 2, np.float32), 44100)
    sf.write(root / "short.wav", 0.3 * np.sin(np.arange(4410) / 10).astype(np.float32), 44100)
    (root / "corrupt.wav").write_bytes(os.urandom(3000))
    return root


@pytest.fixture(scope="session")
def env() -> dict:
    # tests/conftest.py points JAXDAC_COMPILATION_CACHE at the session's cache, which the processes inherit.
    assert os.environ.get("JAXDAC_COMPILATION_CACHE")
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def tiny_yml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yml"
    path.write_text(TINY)
    return path
