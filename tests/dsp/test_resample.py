"""jaxdac.dsp.resample against julius's golden outputs (tests/fixtures/dsp.npz) and basic signal facts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import jax
import jax.numpy as jnp

import dsp_cases as cases
import signals
from jaxdac.dsp import resample
from jaxdac.dsp.resample import resampled_length


@pytest.fixture(scope="module")
def golden():
    return np.load(cases.FIXTURE)


@pytest.mark.parametrize("old, new, n, seed", cases.RESAMPLE_CASES)
def test_matches_julius(golden, old, new, n, seed):
    x = cases.resample_input(old, n, seed)  # [2, 2, n], peaks up to full scale
    ours = np.asarray(resample(x, old, new))
    ref = golden[f"resample/{old}_{new}"]
    assert ours.shape == ref.shape
    assert ours.shape[-1] == resampled_length(n, old, new)
    assert np.abs(ours - ref).max() < 1e-5


def test_output_lengths():
    # floor(new * T / old) with the reduced rates; julius's own lengths are checked by the fixtures above
    # and, for many more lengths, by the live parity suite.
    assert [resampled_length(n, 48000, 44100) for n in (1, 159, 160, 161, 44101)] == [0, 146, 147, 147, 40517]
    assert resampled_length(799, 8000, 44100) == 4404
    for n in (1, 161, 1000):
        assert resample(np.zeros((1, 1, n), np.float32), 48000, 44100).shape == (1, 1, resampled_length(n, 48000, 44100))


def test_output_length_argument():
    x = np.ones((1, 2, 1001), np.float32)
    longest = math.ceil(1001 * 441 / 480)
    assert resample(x, 48000, 44100, output_length=longest).shape == (1, 2, longest)
    with pytest.raises(ValueError):
        resample(x, 48000, 44100, output_length=longest + 1)


def test_same_rate_is_identity():
    x = np.random.default_rng(0).standard_normal((2, 1, 100)).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(resample(x, 16000, 16000)), x)


@pytest.mark.parametrize("old, new", [(8000, 44100), (44100, 24000)])
def test_band_limited_sine_survives(old, new):
    # A 1 kHz tone is well inside both bands: away from the edges the output is the same tone sampled at
    # the new rate (the sinc interpolation error at 24 zero crossings is far below 1e-3).
    x = signals.sine(old, 0.5, 1000.0, 0.5)[None, None]
    y = np.asarray(resample(x, old, new))[0, 0]
    expected = signals.sine(new, 0.5, 1000.0, 0.5)[: y.shape[0]]
    core = slice(new // 20, -new // 20)
    assert np.abs(y[core] - expected[core]).max() < 1e-3


def test_downsampling_removes_content_above_the_new_nyquist():
    old, new = 44100, 16000
    x = signals.sine(old, 0.5, 12000.0, 0.5)[None, None]  # above 8 kHz: must not alias to 4 kHz
    y = np.asarray(resample(x, old, new))[0, 0, 2000:-2000]
    assert np.abs(y).max() < 1e-3


def test_jit_and_vmap_compose():
    x = jnp.asarray(cases.resample_input(22050, 2207, 32))
    direct = resample(x, 22050, 16000)
    mapped = jax.jit(jax.vmap(lambda item: resample(item, 22050, 16000)))(x)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(direct), atol=1e-6)
