"""Compress / decompress parity cases, shared by the fixture script (reference interpreter), the main
suite and the live parity suite. numpy only."""

from __future__ import annotations

import numpy as np

import model_cases
import signals

FIXTURE = model_cases.FIXTURES / "inference.npz"

# name: (model case, input rate, channels, seconds, win_duration)
CASES = {
    "mono44_w0.38": ("tiny", 44100, 1, 3.0, 0.38),
    "stereo44_w1": ("tiny", 44100, 2, 4.0, 1.0),
    "mono48_w1": ("tiny", 48000, 1, 3.0, 1.0),
    "stereo16_w0.5": ("tiny", 16000, 2, 3.0, 0.5),
    "short_w5": ("tiny", 44100, 2, 2.0, 5.0),
    "mono44_w20": ("tiny", 44100, 1, 21.0, 20.0),
    "tiny16k_w1": ("tiny_16khz", 16000, 1, 3.0, 1.0),
    "tiny16k_from44_w1.5": ("tiny_16khz", 44100, 2, 2.5, 1.5),
}
# The fixture keeps every 4th decoded sample (every 32nd for long cases) to stay small; the live
# parity suite compares every sample.
FULL_AUDIO_SECONDS = 4.5


def case_audio(name: str) -> tuple[np.ndarray, int]:
    """``[1, C, T]`` float32 input and its sample rate: speech on one channel, music on the other."""
    _, sr, channels, seconds, _ = CASES[name]
    seed = model_cases.seed_of(name)
    chans = [signals.mixture(sr, seconds, seed), signals.music_like(sr, seconds, seed + 3)][:channels]
    return np.stack(chans)[None].astype(np.float32), sr


def audio_stride(name: str) -> int:
    return 4 if CASES[name][3] <= FULL_AUDIO_SECONDS else 32
