"""Pairs (reconstruction, reference) for the evaluation metrics' golden fixture and parity checks, numpy only.

Imported by tests/test_metrics.py (jaxdac env), scripts/make_fixtures_metrics.py and
tests/parity/test_metrics_parity.py's reference side (reference env): both sides rebuild the same
float32 signals, so tests/fixtures/metrics.npz stores only the original's numbers.

A pair may have its reference and reconstruction at different rates (scripts/evaluate.py resamples each
from its own rate); lengths are chosen so the two agree after resampling to 22.05 and 44.1 kHz.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import signals

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "metrics.npz"
RATES = (22050, 44100)


def codec_like(reference: np.ndarray, seed: int) -> np.ndarray:
    """A reconstruction-like estimate of ``reference [C, T]``: a gain, a 3-tap low-pass blend, a one-sample
    smear and a little noise; exact zeros of the reference stay zero (silence stays silent)."""
    rng = np.random.default_rng([seed, 15])
    padded = np.pad(reference, [(0, 0), (1, 1)])
    lowpass = (padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]) / 3.0
    estimate = 0.85 * reference + 0.25 * lowpass + 0.02 * rng.standard_normal(reference.shape)
    return np.where(reference == 0, 0.0, estimate).astype(np.float32)


def silence_padded(sample_rate: int, seconds: float, pad_seconds: float, seed: int) -> np.ndarray:
    pad = np.zeros(int(round(pad_seconds * sample_rate)), np.float32)
    return np.concatenate([pad, signals.speech_like(sample_rate, seconds, seed), pad])


def _interpolate(x: np.ndarray, old: int, new: int) -> np.ndarray:
    """``x [C, T]`` at rate ``new`` by linear interpolation, ``floor(new * T / old)`` samples: a crude
    reconstruction at another rate (only its numbers matter; both sides read the same array)."""
    n = int(np.floor(new * x.shape[-1] / old))
    t = np.arange(n) * (old / new)
    return np.stack([np.interp(t, np.arange(x.shape[-1]), c) for c in x]).astype(np.float32)


def pair(kind: str, reference_rate: int, seconds: float, seed: int, estimate_rate: int | None = None):
    """``(estimate [C, T'], estimate_rate, reference [C, T], reference_rate)`` float32."""
    if kind == "speech":
        ref = signals.speech_like(reference_rate, seconds, seed)[None]
    elif kind == "music":
        ref = signals.music_like(reference_rate, seconds, seed)[None]
    elif kind == "mixture":
        ref = signals.mixture(reference_rate, seconds, seed)[None]
    elif kind == "silence_padded":
        ref = silence_padded(reference_rate, seconds, seconds / 3, seed)[None]
    elif kind == "stereo":
        ref = signals.stereo(reference_rate, seconds, seed)
    else:
        raise ValueError(kind)
    ref = np.ascontiguousarray(ref, np.float32)
    est = codec_like(ref, seed + 1000)
    estimate_rate = estimate_rate or reference_rate
    if estimate_rate != reference_rate:
        est = _interpolate(est, reference_rate, estimate_rate)
    return est, estimate_rate, ref, reference_rate


# Short pairs for the main suite's fixture (each must exceed 1024 samples at 22.05 kHz, 46 ms).
CASES = {
    "speech_44k": ("speech", 44100, 0.4, 1),
    "music_48k": ("music", 48000, 0.35, 2),
    "silence_padded_16k": ("silence_padded", 16000, 0.3, 3),
    "stereo_24k": ("stereo", 24000, 0.3, 4),
    "stereo_44k": ("stereo", 44100, 0.25, 5),
    "mixture_22k": ("mixture", 22050, 0.2, 6),
}
# Cases whose audiotools PESQ / STOI inputs (mono mixes, 16 kHz for PESQ) the fixture also stores.
SPEECH_CASES = ("speech_44k", "silence_padded_16k")


def case(name: str):
    kind, rate, seconds, seed = CASES[name]
    return pair(kind, rate, seconds, seed)
