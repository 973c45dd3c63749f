"""Inputs of the DSP golden fixtures and parity checks, regenerated from recipes (numpy only).

Imported by the main-suite tests (jaxdac env), by ``scripts/make_fixtures_dsp.py`` and by the live parity
tests' reference side (reference env): both sides rebuild the same float32 inputs from these recipes, so
the fixture file stores only the original's outputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

import signals

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "dsp.npz"

# name -> (sample rate, [(channel generator, seconds, seed, gain), ...] per batch item)
# A channel generator is the name of a tests/signals.py function, or "zeros".
LOUDNESS_CASES: dict[str, tuple[int, list[list[tuple[str, float, int, float]]]]] = {
    "speech_44k": (44100, [[("speech_like", 2.0, 0, 1.0)]]),
    "music_48k": (48000, [[("music_like", 2.0, 1, 1.0)]]),
    "mixture_24k": (24000, [[("mixture", 1.5, 2, 1.0)]]),
    "stereo_44k": (44100, [[("music_like", 2.0, 2, 1.0), ("speech_like", 2.0, 2, 1.0)]]),
    "silence_44k": (44100, [[("zeros", 1.0, 0, 1.0)]]),
    "silence_stereo_clip_16k": (16000, [[("zeros", 0.1, 0, 1.0), ("zeros", 0.1, 0, 1.0)]]),
    "clip_0.1s_44k": (44100, [[("speech_like", 0.1, 3, 1.0)]]),
    "clip_0.1s_stereo_16k": (16000, [[("music_like", 0.1, 4, 1.0), ("speech_like", 0.1, 4, 1.0)]]),
    "clipped_44k": (44100, [[("clipped", 1.5, 5, 1.0)]]),
    "clipped_stereo_48k": (48000, [[("clipped", 1.0, 6, 1.0), ("clipped", 1.0, 7, 1.0)]]),
    # Near and below the -70 LUFS absolute gate.
    "noise_-67_24k": (24000, [[("noise", 1.2, 8, 3.2e-4)]]),
    "noise_-77_24k": (24000, [[("noise", 1.2, 9, 1.0e-4)]]),
    # Noise fading in from about -85 to -60 LUFS: its blocks straddle the absolute gate.
    "noise_fade_across_gate_44k": (44100, [[("noise_fade", 2.0, 10, 1.0)]]),
    # Loud speech, then quiet music 35 dB down: the relative gate drops the quiet part.
    "relative_gate_16k": (16000, [[("speech_then_quiet_music", 3.0, 23, 1.0)]]),
    "batch_levels_22k": (
        22050,
        [
            [("music_like", 1.7, 11, 1.0), ("speech_like", 1.7, 11, 1.0)],
            [("music_like", 1.7, 12, 0.05), ("speech_like", 1.7, 12, 0.05)],
            [("zeros", 1.7, 0, 1.0), ("speech_like", 1.7, 13, 0.3)],
        ],
    ),
    "five_channels_48k": (48000, [[("music_like", 1.0, s, 1.0) for s in range(14, 19)]]),
    # 11025 Hz: block 4410 and hop 1102 samples, not a multiple of each other.
    "odd_rate_11k": (11025, [[("mixture", 1.3, 19, 1.0)]]),
}

# Cases whose length puts pyloudnorm's blocks exactly on audiotools' grid (T = block + k * hop) and whose
# level is well above the gates: there both meters define the same quantity.
PYLOUDNORM_CASES: dict[str, tuple[int, list[list[tuple[str, float, int, float]]]]] = {
    "aligned_speech_44k": (44100, [[("speech_like", (17640 + 4410 * 16) / 44100, 20, 1.0)]]),
    "aligned_stereo_48k": (48000, [[("music_like", 2.0, 21, 1.0), ("speech_like", 2.0, 21, 1.0)]]),
    "aligned_mixture_16k": (16000, [[("mixture", 1.6, 22, 1.0)]]),
}

# (old rate, new rate, input samples, seed): the acceptance pairs plus DAC's 44.1 -> 16 kHz.
RESAMPLE_CASES = [
    (48000, 44100, 4801, 30),
    (44100, 24000, 4411, 31),
    (22050, 16000, 2207, 32),
    (16000, 44100, 1603, 33),
    (8000, 44100, 799, 34),
    (44100, 16000, 4409, 35),
]

STFT_RATE = 44100
STFT_SAMPLES = 2205
# DAC's multi-scale mel loss: window lengths and their mel band counts (dac/nn/loss.py defaults).
MEL_BANDS = {32: 5, 64: 10, 128: 20, 256: 40, 512: 80, 1024: 160, 2048: 320}
# Extra mel settings: (sample rate, window, n_mels, fmin, fmax).
MEL_EXTRA = [(44100, 1024, 80, 50.0, 12000.0), (16000, 512, 64, 0.0, None), (24000, 256, 40, 20.0, 8000.0)]
# Filterbanks compared directly: (sample rate, n_fft, n_mels, fmin, fmax).
FILTERBANKS = [(44100, 512, 80, 0.0, None), (44100, 2048, 128, 0.0, None), (16000, 1024, 64, 30.0, 7600.0)]


def _channel(kind: str, sample_rate: int, seconds: float, seed: int) -> np.ndarray:
    n = int(round(sample_rate * seconds))
    if kind == "zeros":
        return np.zeros(n, np.float32)
    if kind == "noise":
        return signals.noise(sample_rate, seconds, seed, amplitude=1.0)
    if kind == "noise_fade":
        fade_db = np.linspace(-85.0, -60.0, n) - 2.9  # K-weighted white noise reads ~2.9 dB above its RMS
        return (signals.noise(sample_rate, seconds, seed, amplitude=1.0) * 10 ** (fade_db / 20)).astype(np.float32)
    if kind == "speech_then_quiet_music":
        third = seconds / 3
        parts = [
            signals.speech_like(sample_rate, third, seed),
            np.zeros(int(round(sample_rate * third)), np.float32),
            signals.music_like(sample_rate, third, seed) * 10 ** (-35 / 20),
        ]
        return np.concatenate(parts)[:n].astype(np.float32)
    return getattr(signals, kind)(sample_rate, seconds, seed)


def build(recipe: tuple[int, list[list[tuple[str, float, int, float]]]]) -> tuple[np.ndarray, int]:
    """``(audio [B, C, T] float32, sample rate)`` from a loudness recipe."""
    sample_rate, items = recipe
    batch = [[_channel(kind, sample_rate, sec, seed) * np.float32(gain) for kind, sec, seed, gain in item] for item in items]
    return np.asarray(batch, np.float32), sample_rate


def resample_input(old_sr: int, n_samples: int, seed: int) -> np.ndarray:
    """``[2, 2, n_samples]``: speech over music, hard-clipped music (full scale), noise and a 3 kHz sine."""
    seconds = n_samples / old_sr + 0.01
    x = [
        [signals.mixture(old_sr, seconds, seed), signals.clipped(old_sr, seconds, seed + 1)],
        [signals.noise(old_sr, seconds, seed + 2, 0.3), signals.sine(old_sr, seconds, 3000.0, 0.9)],
    ]
    return np.asarray(x, np.float32)[..., :n_samples]


def stft_input(channels: int = 1) -> np.ndarray:
    """``[2, channels, STFT_SAMPLES]`` at STFT_RATE: two items of mixtures (the fixture keeps one channel)."""
    seconds = STFT_SAMPLES / STFT_RATE + 0.01
    x = [[signals.mixture(STFT_RATE, seconds, 40 + 2 * b + c) for c in range(channels)] for b in range(2)]
    return np.asarray(x, np.float32)[..., :STFT_SAMPLES]


def mel_input(sample_rate: int) -> np.ndarray:
    """``[1, 2, T]``: 0.1 s of stereo at ``sample_rate``."""
    return signals.stereo(sample_rate, 0.1, 42)[None]


def tasks_json(tasks: list[dict]) -> np.ndarray:
    """Tasks for tests/parity/reference_dsp.py, as a 0-d string array that .npz files can carry."""
    return np.asarray(json.dumps(tasks))
