"""jaxdac.dsp.loudness against the original's golden values (tests/fixtures/dsp.npz) and against itself."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal

import jax
import jax.numpy as jnp

import dsp_cases as cases
import signals
from jaxdac.dsp import loudness
from jaxdac.dsp.loudness import MIN_LOUDNESS, gated_loudness, k_weight, k_weighting_biquads

# Acceptance is 0.01 LU against audiotools; the implementation measures ~2e-5, so a regression to a
# merely "close" filter or gate shows up here long before it reaches the acceptance bound.
LU_TOLERANCE = 1e-3


@pytest.fixture(scope="module")
def golden():
    return np.load(cases.FIXTURE)


@pytest.mark.parametrize("name", [*cases.LOUDNESS_CASES, *cases.PYLOUDNORM_CASES])
def test_matches_audiotools(golden, name):
    x, sr = cases.build({**cases.LOUDNESS_CASES, **cases.PYLOUDNORM_CASES}[name])
    ours = np.asarray(loudness(x, sr))
    ref = golden[f"loudness/{name}"]
    assert ours.shape == ref.shape == (x.shape[0],)
    np.testing.assert_allclose(ours, ref, atol=LU_TOLERANCE, rtol=0)


@pytest.mark.parametrize("name", list(cases.PYLOUDNORM_CASES))
def test_matches_pyloudnorm_where_definitions_agree(golden, name):
    # Block-aligned lengths and levels far above the gates: pyloudnorm's rounded block count, its
    # >= absolute gate and float64 arithmetic then measure the same thing as audiotools.
    x, sr = cases.build(cases.PYLOUDNORM_CASES[name])
    np.testing.assert_allclose(np.asarray(loudness(x, sr)), golden[f"pyloudnorm/{name}"], atol=LU_TOLERANCE, rtol=0)


def _scipy_k_weight(x: np.ndarray, sr: int) -> np.ndarray:
    y = x.astype(np.float64)
    for b, a in k_weighting_biquads(sr):
        y = scipy.signal.lfilter(b, a, y, axis=-1)
    return y


@pytest.mark.parametrize(
    "sr, n", [(48000, 3 * 48000 + 77), (16000, 1000), (44100, 127), (81378, 30000), (192000, 50000)]
)
def test_k_weighting_is_the_exact_iir(sr, n):
    # The chunked filter against a plain float64 lfilter: over many chunk groups with a ragged end,
    # shorter than one chunk, and at rates where the high pass's double pole made other state-space
    # bases lose 1e-3 to float32 rounding (81378 Hz in the eigenbasis, 192 kHz in direct form).
    x = np.random.default_rng(n).standard_normal((2, 1, n)).astype(np.float32) * 0.5
    ours = np.asarray(k_weight(jnp.asarray(x), sr))
    ref = _scipy_k_weight(x, sr)
    assert np.abs(ours - ref).max() < 1e-5 * np.abs(ref).max()


def test_batch_items_are_independent():
    x, sr = cases.build(cases.LOUDNESS_CASES["batch_levels_22k"])
    together = np.asarray(loudness(x, sr))
    alone = np.array([float(loudness(x[i : i + 1], sr)[0]) for i in range(x.shape[0])])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert np.ptp(together) > 10  # the items really differ


def test_short_signals_are_zero_padded_to_half_a_second():
    # 0.3 s: unpadded it is one (zero-filled) 0.4 s block; padded to 0.5 s it is two blocks, the
    # second holding 0.2 s of the signal, so the padding visibly changes the result.
    sr = 44100
    x = signals.speech_like(sr, 0.3, 5)[None, None]
    pad = int((0.5 - x.shape[-1] / sr) * sr)
    measured = float(loudness(x, sr)[0])
    assert measured == pytest.approx(float(loudness(np.pad(x, ((0, 0), (0, 0), (0, pad))), sr)[0]), abs=1e-6)
    unpadded = float(gated_loudness(k_weight(jnp.asarray(x), sr), sr)[0])
    assert abs(measured - unpadded) > 0.5


def test_gain_shifts_loudness_by_its_decibels():
    x, sr = cases.build(cases.LOUDNESS_CASES["music_48k"])
    base = float(loudness(x, sr)[0])
    assert float(loudness(x * 0.5, sr)[0]) == pytest.approx(base + 20 * np.log10(0.5), abs=1e-3)


def test_silence_floor_and_finite_gradients():
    sr = 16000
    x = np.zeros((2, 2, sr), np.float32)
    x[1] = np.random.default_rng(0).standard_normal((2, sr)) * 0.1
    assert float(loudness(x, sr)[0]) == MIN_LOUDNESS

    @jax.jit
    def step(x):  # usable inside a jitted, differentiated function
        return jax.grad(lambda x: loudness(x, sr).sum())(x)

    grad = np.asarray(step(jnp.asarray(x)))
    assert np.isfinite(grad).all()
    assert np.abs(grad[1]).max() > 0


def test_more_than_five_channels_is_an_error():
    with pytest.raises(ValueError, match="at most 5"):
        loudness(np.zeros((1, 6, 24000), np.float32), 24000)
