"""jaxdac.dsp.LoudnessMeter and Resampler against the whole-signal loudness() and resample().

Long files are prepared piece by piece; the pieces must not change the numbers. Each stream is fed in
one piece, in random pieces (empty and 1-sample ones included) and in pieces cut exactly at the
implementation's own boundaries (8192-sample filter groups, gating segments, resampler steps), with small
steps so that a few seconds of audio cross many of them.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest

import dsp_cases as cases
import signals
from jaxdac.dsp import LoudnessMeter, Resampler, loudness, resample
from jaxdac.dsp.loudness import MIN_LOUDNESS
from jaxdac.dsp.resample import resampled_length

# `jaxdac.dsp.loudness` is also the name of the function the package exports, so reach the modules
# (and their trace counters) through sys.modules.
loudness_module = sys.modules["jaxdac.dsp.loudness"]
resample_module = sys.modules["jaxdac.dsp.resample"]

GROUP = 8192  # samples per chunk group of the K-weighting filter
METER_STEP = 2 * GROUP  # small, so that short signals take many steps
# The streamed filter runs the same arithmetic on fewer groups per call, and XLA may pick other matmul
# kernels for that shape: the filtered samples can differ by a float32 ulp or two. On the cases here
# the results are bit-identical; sweeps over other step sizes measured at most 2e-6 LU.
LU_TOLERANCE = 1e-5
# Likewise for the resampler's convolution. Bit-identical here; at 44.1 -> 16 kHz, steps of 1, 2 or 4
# frames per call got another kernel and differed by up to 9.5e-7 (about 8 ulps at full scale).
RESAMPLE_TOLERANCE = 1e-6


def _pieces(length: int, pattern: str, boundaries: tuple[int, ...] = (), seed: int = 0) -> list[slice]:
    """Slices that cut ``range(length)`` into consecutive pieces.

    ``one``: a single piece. ``random``: random sizes up to 5000 samples, with empty and 1-sample pieces
    mixed in. ``aligned``: cut at every multiple of each of ``boundaries``, so pieces end exactly on them.
    """
    if pattern == "one":
        return [slice(0, length)]
    if pattern == "random":
        rng = np.random.default_rng(seed)
        cuts, pos = [0], 0
        while pos < length:
            kind = rng.integers(4)
            pos += 0 if kind == 0 else 1 if kind == 1 else int(rng.integers(2, 5000))
            cuts.append(min(pos, length))
    elif pattern == "aligned":
        cuts = sorted({0, length} | {k for b in boundaries for k in range(b, length, b)})
    else:
        raise ValueError(pattern)
    return [slice(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def _meter(x: np.ndarray, sr: int, pattern: str, seed: int = 0) -> np.ndarray:
    meter = LoudnessMeter(sr, x.shape[0], x.shape[1], step=METER_STEP)
    seg = math.gcd(int(0.4 * sr), int(0.1 * sr))
    for piece in _pieces(x.shape[-1], pattern, (GROUP, METER_STEP, seg), seed):
        meter.push(x[..., piece])
    return meter.result()


def _batch(sr: int, seconds: float, batch: int, channels: int, seed: int) -> np.ndarray:
    """``[batch, channels, T]``: varied material, each item at its own level."""
    kinds = [signals.music_like, signals.speech_like, signals.mixture]
    gains = [np.float32(10 ** (-12 * b / 20)) for b in range(batch)]  # 12 dB apart
    x = [
        [kinds[(b + c) % 3](sr, seconds, seed + 7 * b + c) * gains[b] for c in range(channels)]
        for b in range(batch)
    ]
    return np.asarray(x, np.float32)


@pytest.mark.parametrize("pattern", ["one", "random", "aligned"])
@pytest.mark.parametrize(
    "sr, seconds, batch, channels",
    [(44100, 2.3, 2, 2), (16000, 3.1, 1, 5), (24000, 1.7, 3, 1)],
)
def test_meter_matches_loudness(sr, seconds, batch, channels, pattern):
    x = _batch(sr, seconds, batch, channels, seed=sr % 97)
    expected = np.asarray(loudness(x, sr))
    got = _meter(x, sr, pattern, seed=batch)
    assert got.shape == (batch,) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=LU_TOLERANCE, rtol=0)
    assert np.ptp(expected) > 5 or batch == 1  # the batch items really differ


@pytest.mark.parametrize("pattern", ["one", "random"])
@pytest.mark.parametrize("seconds", [0.3, 0.1, 0.0])
def test_meter_short_signals(seconds, pattern):
    # Under 0.5 s loudness() zero-pads before filtering (the ringing is measured); under 0.4 s the
    # signal does not even fill one block. Both must happen at result(), on the stream's total length.
    sr = 16000
    if seconds:
        x = np.stack([signals.stereo(sr, seconds, 3), signals.stereo(sr, seconds, 4) * 0.3])
    else:
        x = np.zeros((2, 2, 0), np.float32)
    got = _meter(x, sr, pattern)
    np.testing.assert_allclose(got, np.asarray(loudness(x, sr)), atol=LU_TOLERANCE, rtol=0)
    if seconds == 0.0:
        np.testing.assert_array_equal(got, MIN_LOUDNESS)


def test_meter_silence_reads_the_floor():
    sr = 24000
    meter = LoudnessMeter(sr, 2, 2, step=METER_STEP)
    for _ in range(7):
        meter.push(np.zeros((2, 2, 5000), np.float32))
    np.testing.assert_array_equal(meter.result(), MIN_LOUDNESS)


@pytest.mark.parametrize("pattern", ["random", "aligned"])
def test_meter_loud_tail(pattern):
    # Quiet speech, then 0.15 s of loud noise at the very end: almost all of the loudness sits in the
    # last, zero-filled block and in the samples still buffered when result() is called.
    sr = 44100
    quiet = signals.speech_like(sr, 2.0, 8) * np.float32(0.01)
    tail = signals.noise(sr, 0.15, 9, amplitude=0.5)
    x = np.concatenate([quiet, tail])[None, None]
    expected = np.asarray(loudness(x, sr))
    assert expected[0] > np.asarray(loudness(quiet[None, None], sr))[0] + 10
    np.testing.assert_allclose(_meter(x, sr, pattern), expected, atol=LU_TOLERANCE, rtol=0)


def test_meter_takes_jax_arrays_and_checks_its_input():
    import jax.numpy as jnp

    sr = 16000
    x = _batch(sr, 0.8, 1, 2, seed=5)
    meter = LoudnessMeter(sr, 1, 2, step=METER_STEP)
    meter.push(jnp.asarray(x[..., :5000]))
    meter.push(x[..., 5000:])
    with pytest.raises(ValueError, match=r"\[1, 2, t\]"):
        meter.push(x[:, :1])
    np.testing.assert_allclose(meter.result(), np.asarray(loudness(x, sr)), atol=LU_TOLERANCE, rtol=0)
    with pytest.raises(RuntimeError):
        meter.push(x)
    with pytest.raises(RuntimeError):
        meter.result()
    with pytest.raises(ValueError, match="at most 5"):
        LoudnessMeter(sr, 1, 6)
    with pytest.raises(ValueError, match="multiple of 8192"):
        LoudnessMeter(sr, 1, 2, step=10000)


@pytest.mark.parametrize("pattern", ["one", "random", "aligned"])
@pytest.mark.parametrize("old, new", [(44100, 44100), (48000, 44100), (44100, 16000), (16000, 24000)])
def test_resampler_matches_resample(old, new, pattern):
    n = int(1.3 * old) + 7
    x = cases.resample_input(old, n, seed=old % 89 + new % 13)  # [2, 2, n], peaks up to full scale
    step = 1500  # input samples per jitted call: many calls in 1.3 s
    resampler = Resampler(old, new, step=step)
    # Aligned cuts: whole reduced-rate rows and whole steps' worth of rows.
    reduced_old = old // math.gcd(old, new)
    rows_per_step = max(1, step // reduced_old) * reduced_old
    pieces = _pieces(n, pattern, (reduced_old, rows_per_step), seed=n)
    outputs = [resampler.push(x[..., piece]) for piece in pieces]
    outputs.append(resampler.flush())
    got = np.concatenate(outputs, axis=-1)
    expected = np.asarray(resample(x, old, new))
    assert got.shape == expected.shape == (2, 2, resampled_length(n, old, new))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=RESAMPLE_TOLERANCE, rtol=0)
    if old == new:
        np.testing.assert_array_equal(got, x)


def test_resampler_streams_as_it_goes():
    # Outputs come back during the pushes, not all at the flush: after each push at most one step's
    # frames plus the frames that read past the samples so far are held back.
    old, new = 48000, 44100
    x = signals.mixture(old, 2.0, 6)
    resampler = Resampler(old, new, step=2000)
    bound = (resampler._frames + resampler._n_rows) * resampler._new
    emitted = []
    for piece in _pieces(x.shape[-1], "random", seed=1):
        emitted.append(resampler.push(x[piece]))
        held_back = resampled_length(piece.stop, old, new) - sum(y.shape[-1] for y in emitted)
        assert 0 <= held_back <= bound
    got = np.concatenate([*emitted, resampler.flush()])
    np.testing.assert_allclose(got, np.asarray(resample(x, old, new)), atol=RESAMPLE_TOLERANCE, rtol=0)


@pytest.mark.parametrize("n", [0, 1, 5, 159, 160, 161])
def test_resampler_tiny_inputs(n):
    # Shorter than one reduced-rate row (160 samples at 48 -> 44.1 kHz): every output reads the padding.
    x = cases.resample_input(48000, max(n, 1), seed=n)[..., :n]
    resampler = Resampler(48000, 44100)
    outputs = [resampler.push(x[..., :1]), resampler.push(x[..., 1:]), resampler.flush()]
    got = np.concatenate(outputs, axis=-1)
    assert got.shape == (2, 2, resampled_length(n, 48000, 44100))
    np.testing.assert_allclose(got, np.asarray(resample(x, 48000, 44100)), atol=RESAMPLE_TOLERANCE, rtol=0)


def test_resampler_empty_stream_and_misuse():
    resampler = Resampler(44100, 16000)
    assert resampler.push(np.zeros((3, 0), np.float32)).shape == (3, 0)
    assert resampler.flush().shape == (3, 0)
    with pytest.raises(RuntimeError):
        resampler.push(np.zeros((3, 10), np.float32))
    assert Resampler(44100, 16000).flush().shape == (0,)  # nothing pushed: no leading shape known
    resampler = Resampler(44100, 16000)
    resampler.push(np.zeros((2, 100), np.float32))
    with pytest.raises(ValueError, match="leading shape"):
        resampler.push(np.zeros((3, 100), np.float32))
    with pytest.raises(TypeError):
        Resampler(44100.0, 16000)


def test_steady_pushes_compile_once():
    # A long stream of equal pieces: every jitted step has one shape, so each step function is traced
    # once (here: at most once, since an earlier test may have compiled the same shape), and the final
    # partial step at result()/flush() reuses that shape too.
    loudness_traces, resample_traces = loudness_module.TRACES, resample_module.TRACES
    before = sum(loudness_traces.values()), sum(resample_traces.values())
    sr = 16000
    meter = LoudnessMeter(sr, 1, 3, step=GROUP)  # a batch shape no other test uses
    resampler = Resampler(sr, 24000, step=1000)
    piece = _batch(sr, 0.2, 1, 3, seed=11)  # 3200 samples: the steps fall at varying offsets in a piece
    for i in range(25):
        meter.push(piece)
        resampler.push(piece)
        if i == 2:  # both step functions have run by now
            first = sum(loudness_traces.values()), sum(resample_traces.values())
    meter.result()
    resampler.flush()
    after = sum(loudness_traces.values()), sum(resample_traces.values())
    assert first[0] - before[0] <= 1 and first[1] - before[1] <= 1
    assert after == first


@pytest.mark.parametrize("seconds", [1, 4])
def test_buffers_do_not_grow_with_the_stream(seconds):
    # The samples held between pushes are bounded by a step (plus, for the resampler, the filter's
    # reach), whatever has been pushed; only the meter's per-segment sums grow, by one float per 0.1 s.
    sr = 44100
    meter_step, resample_step = GROUP, 2000
    meter = LoudnessMeter(sr, 1, 2, step=meter_step)
    resampler = Resampler(sr, 16000, step=resample_step)
    piece = np.asarray(signals.stereo(sr, 0.07, 12))[None]  # [1, 2, 3087]
    held = []
    for _ in range(int(seconds / 0.07)):
        meter.push(piece)
        resampler.push(piece)
        held.append((meter._raw.shape[-1], meter._tail.shape[-1], resampler._pending.shape[-1]))
    raw, tail, pending = np.max(held, axis=0)
    assert raw < meter_step
    assert tail == 4410  # one segment
    # 441 -> 160 reduced: rows of 441 samples, 4 frames per step, each frame reading n_rows rows.
    assert resampler._old == 441 and resampler._frames == resample_step // 441
    assert pending < (resampler._frames + resampler._n_rows - 1) * 441 < 3 * resample_step
    segments = sum(s.shape[-1] for s in meter._sums)
    assert segments <= seconds / 0.1 + 1
