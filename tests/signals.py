"""Deterministic test signals, numpy only.

Imported by the test suite, the fixture scripts (which run in the reference environment, where jaxdac is
not installed) and the benchmarks, so it depends on nothing but numpy. Every generator is a pure function
of its arguments: the same call gives the same float32 samples in any environment.
"""

from __future__ import annotations

import numpy as np


def _rng(seed: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, salt])


def speech_like(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Voiced syllables (harmonics of a gliding pitch shaped by moving formants), fricative noise bursts
    and pauses. Returns float32 ``[T]`` with peaks around 0.5."""
    rng = _rng(seed, 1)
    n = int(round(sample_rate * seconds))
    # Syllables of 120-300 ms with 40-120 ms gaps; pitch glides between 90 and 240 Hz.
    env = np.zeros(n)
    f0 = np.full(n, 140.0)
    formants = np.zeros((n, 3))
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.12, 0.30) * sample_rate)
        gap = int(rng.uniform(0.04, 0.12) * sample_rate)
        seg = slice(pos, min(pos + length, n))
        m = seg.stop - seg.start
        ramp = np.sin(np.pi * np.arange(m) / max(m, 1)) ** 0.7
        env[seg] = ramp * rng.uniform(0.4, 1.0)
        f0[seg] = np.linspace(rng.uniform(90, 240), rng.uniform(90, 240), m)
        formants[seg] = np.linspace(
            [rng.uniform(300, 900), rng.uniform(900, 2300), rng.uniform(2300, 3300)],
            [rng.uniform(300, 900), rng.uniform(900, 2300), rng.uniform(2300, 3300)],
            m,
        )
        if seg.stop < n:  # let the pitch and formants continue smoothly through the gap
            g = slice(seg.stop, min(seg.stop + gap, n))
            f0[g] = f0[seg.stop - 1]
            formants[g] = formants[seg.stop - 1]
        pos += length + gap
    phase = 2 * np.pi * np.cumsum(f0) / sample_rate
    voiced = np.zeros(n)
    nyquist = sample_rate / 2
    for k in range(1, 60):
        freq = k * f0
        gain = sum(
            1.0 / (1.0 + ((freq - formants[:, i]) / (60.0 + 40 * i)) ** 2) / (i + 1) for i in range(3)
        )
        gain = np.where(freq < nyquist * 0.95, gain, 0.0)
        voiced += gain * np.sin(k * phase) / np.sqrt(k)
    voiced *= env
    # Fricatives: high-passed noise bursts in some gaps.
    noise = rng.standard_normal(n)
    noise = noise - np.convolve(noise, np.ones(8) / 8, mode="same")
    fric_env = np.zeros(n)
    for _ in range(max(1, int(seconds * 2))):
        start = int(rng.uniform(0, max(n - 1, 1)))
        m = int(rng.uniform(0.03, 0.09) * sample_rate)
        seg = slice(start, min(start + m, n))
        fric_env[seg] = np.hanning(seg.stop - seg.start) * rng.uniform(0.1, 0.3)
    x = voiced + noise * fric_env + 1e-3 * rng.standard_normal(n)
    x = x / (np.abs(x).max() + 1e-9) * 0.5
    return x.astype(np.float32)


def music_like(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Notes and chords of decaying harmonic tones with vibrato, a bass line and noisy percussion hits.
    Returns float32 ``[T]`` with peaks around 0.6."""
    rng = _rng(seed, 2)
    n = int(round(sample_rate * seconds))
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    nyquist = sample_rate / 2
    beat = 60.0 / rng.uniform(90, 140)
    n_beats = int(np.ceil(seconds / beat)) + 1
    for b in range(n_beats):
        start = b * beat
        chord = 220.0 * 2 ** (rng.choice([0, 2, 3, 5, 7, 9, 10, 12], size=rng.integers(1, 4)) / 12)
        dur = beat * rng.choice([0.5, 1.0, 2.0])
        i0, i1 = int(start * sample_rate), min(int((start + dur + 0.3) * sample_rate), n)
        if i0 >= n:
            break
        tt = t[i0:i1] - start
        amp_env = np.exp(-tt * rng.uniform(2.0, 6.0)) * np.minimum(tt / 0.005, 1.0)
        for f in chord:
            vib = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * tt)
            for k in range(1, 16):
                if k * f >= nyquist * 0.95:
                    break
                x[i0:i1] += amp_env * np.sin(2 * np.pi * k * f * vib * tt + k) * 0.3 / k**1.2
        # bass
        fb = 55.0 * 2 ** (rng.integers(0, 12) / 12)
        x[i0:i1] += 0.25 * amp_env * np.sin(2 * np.pi * fb * tt)
        # percussion: short noise burst on the beat
        m = min(int(0.05 * sample_rate), n - i0)
        x[i0 : i0 + m] += rng.standard_normal(m) * np.exp(-np.arange(m) / (0.01 * sample_rate)) * 0.3
    x = x / (np.abs(x).max() + 1e-9) * 0.6
    return x.astype(np.float32)


def sine(sample_rate: int, seconds: float, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(sample_rate * seconds))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def noise(sample_rate: int, seconds: float, seed: int = 0, amplitude: float = 0.1) -> np.ndarray:
    return (amplitude * _rng(seed, 3).standard_normal(int(round(sample_rate * seconds)))).astype(np.float32)


def clipped(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Music driven 4x into hard clipping at full scale."""
    return np.clip(music_like(sample_rate, seconds, seed) * 4.0, -1.0, 1.0).astype(np.float32)


def stereo(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """``[2, T]``: music on the left, speech on the right."""
    return np.stack([music_like(sample_rate, seconds, seed), speech_like(sample_rate, seconds, seed)])


def mixture(sample_rate: int, seconds: float, seed: int = 0) -> np.ndarray:
    """``[T]``: speech over music, the varied input used by model parity checks."""
    x = 0.6 * speech_like(sample_rate, seconds, seed) + 0.4 * music_like(sample_rate, seconds, seed + 1)
    return x.astype(np.float32)
