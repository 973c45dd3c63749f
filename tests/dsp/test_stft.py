"""jaxdac.dsp STFT, inverse STFT and mel against audiotools' golden outputs (tests/fixtures/dsp.npz)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import dsp_cases as cases
from jaxdac.dsp import istft, mel_filterbank, mel_spectrogram, stft

TOLERANCE = 1e-4  # absolute, on magnitudes that reach ~50 (window 2048)


@pytest.fixture(scope="module")
def golden():
    return np.load(cases.FIXTURE)


@pytest.fixture(scope="module")
def audio():
    return cases.stft_input()  # [2, 1, 2205]


@pytest.mark.parametrize("match_stride", [False, True])
@pytest.mark.parametrize("window", list(cases.MEL_BANDS))
def test_stft_magnitude_and_mel_match_audiotools(golden, audio, window, match_stride):
    key = f"{window}_{int(match_stride)}"
    magnitude = np.abs(np.asarray(stft(audio, window, match_stride=match_stride)))
    ref = golden[f"stft_magnitude/{key}"]
    assert magnitude.shape == ref.shape
    assert np.abs(magnitude - ref).max() < TOLERANCE
    n_mels = cases.MEL_BANDS[window]
    mel = np.asarray(mel_spectrogram(audio, cases.STFT_RATE, window, n_mels=n_mels, match_stride=match_stride))
    ref_mel = golden[f"mel/{key}"]
    assert mel.shape == ref_mel.shape
    assert np.abs(mel - ref_mel).max() < TOLERANCE


@pytest.mark.parametrize("match_stride", [False, True])
def test_complex_stft_matches_audiotools(golden, audio, match_stride):
    # Phase convention (sign of the exponent, frame origin) as well as magnitude.
    spec = np.asarray(stft(audio, 512, match_stride=match_stride))
    ref = golden[f"stft/512_{int(match_stride)}"]
    assert spec.shape == ref.shape
    assert np.abs(spec - ref).max() < TOLERANCE


@pytest.mark.parametrize("i", range(len(cases.MEL_EXTRA)))
def test_mel_with_band_limits_matches_audiotools(golden, i):
    sr, window, n_mels, fmin, fmax = cases.MEL_EXTRA[i]
    mel = np.asarray(mel_spectrogram(cases.mel_input(sr), sr, window, n_mels=n_mels, fmin=fmin, fmax=fmax))
    assert np.abs(mel - golden[f"mel_extra/{i}"]).max() < TOLERANCE


@pytest.mark.parametrize("i", range(len(cases.FILTERBANKS)))
def test_filterbank_is_slaney(golden, i):
    sr, n_fft, n_mels, fmin, fmax = cases.FILTERBANKS[i]
    bank = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    ref = golden[f"filterbank/{i}"]
    assert bank.shape == ref.shape == (n_mels, n_fft // 2 + 1)
    assert np.abs(bank - ref).max() < 1e-7
    assert (bank.max(axis=1) > 0).all()


@pytest.mark.parametrize("length", [2205, 4096, 1000])
@pytest.mark.parametrize("match_stride", [False, True])
@pytest.mark.parametrize("window", [32, 512, 2048])
def test_istft_inverts_stft(window, match_stride, length):
    rng = np.random.default_rng(window + length)
    x = (rng.standard_normal((2, 2, length)) * 0.3).astype(np.float32)
    spec = stft(x, window, match_stride=match_stride)
    y = np.asarray(istft(spec, window, match_stride=match_stride, length=length))
    assert y.shape == x.shape
    assert np.abs(y - x).max() < 1e-5


def test_frame_counts():
    x = np.zeros((1, 1, 1001), np.float32)
    for window in (64, 256):
        hop = window // 4
        assert stft(x, window).shape == (1, 1, window // 2 + 1, 1 + 1001 // hop)
        assert stft(x, window, match_stride=True).shape[-1] == math.ceil(1001 / hop)
    assert stft(x, 256, hop_length=100).shape[-1] == 1 + (1001 + 256 - 256) // 100


def test_match_stride_needs_quarter_hop():
    with pytest.raises(ValueError, match="match_stride"):
        stft(np.zeros((1, 1, 1000), np.float32), 256, hop_length=128, match_stride=True)


def test_mel_loss_is_differentiable_inside_jit():
    # DAC's mel loss takes log10 of clamped mel magnitudes; silent frames (|X| = 0) must not make NaNs.
    import jax
    import jax.numpy as jnp

    x = np.zeros((2, 1, 4096), np.float32)
    x[1, 0] = np.random.default_rng(0).standard_normal(4096) * 0.1

    @jax.jit
    def grad(x):
        def loss(x):
            mel = mel_spectrogram(x, 44100, 512, n_mels=80)
            return jnp.log10(jnp.maximum(mel, 1e-5)).mean() + jnp.abs(stft(x, 256, match_stride=True)).mean()

        return jax.grad(loss)(x)

    g = np.asarray(grad(jnp.asarray(x)))
    assert np.isfinite(g).all() and np.abs(g[1]).max() > 0
