"""Inputs of the loss golden fixtures and parity checks, regenerated from recipes (numpy only).

Imported by tests/train/test_losses.py (jaxdac env), by scripts/make_fixtures_losses.py and by the
parity test's reference side (reference env): both sides rebuild the same float32 inputs, so
tests/fixtures/losses.npz stores only the original's numbers.

Configs are keyword arguments of the original's loss classes (``dac.nn.loss``), which are also the field
names of jaxdac's config dataclasses; ``{}`` is conf/base.yml's setting (see ``base_kwargs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import signals

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "losses.npz"

# conf/base.yml's MelSpectrogramLoss and MultiScaleSTFTLoss settings, as the original's kwargs.
BASE_MEL = dict(
    n_mels=[5, 10, 20, 40, 80, 160, 320],
    window_lengths=[32, 64, 128, 256, 512, 1024, 2048],
    mel_fmin=[0, 0, 0, 0, 0, 0, 0],
    mel_fmax=[None] * 7,
    pow=1.0,
    clamp_eps=1.0e-5,
    mag_weight=0.0,
)
BASE_STFT = dict(window_lengths=[2048, 512])

# Every other option of the losses, each with a non-default value.
MEL_CONFIGS: dict[str, dict] = {
    "base": {},
    "variant": dict(
        n_mels=[150, 80], window_lengths=[2048, 512], mel_fmin=[50.0, 0.0], mel_fmax=[6000.0, None],
        pow=2.0, mag_weight=1.0, log_weight=0.5, clamp_eps=1e-4, window_type="sqrt_hann",
    ),
}
STFT_CONFIGS: dict[str, dict] = {
    "base": {},
    "variant": dict(window_lengths=[1024, 256, 64], pow=1.0, mag_weight=0.5, log_weight=2.0, clamp_eps=1e-4,
                    window_type="sqrt_hann"),
}
SISDR_CONFIGS: dict[str, dict] = {
    "base": {},
    "plain_snr_clipped": dict(scaling=False, zero_mean=False, clip_min=-16.0, reduction="none"),
    "sum_clipped": dict(reduction="sum", clip_min=-16.0),
}


def base_kwargs(kind: str, overrides: dict) -> dict:
    """The original's constructor kwargs for a config: base.yml's for mel and STFT, then ``overrides``."""
    base = {"mel": BASE_MEL, "stft": BASE_STFT, "sisdr": {}}[kind]
    return {**base, **overrides}


def perturb(reference: np.ndarray, seed: int) -> np.ndarray:
    """A codec-like estimate of ``reference [B, C, T]``: a gain, a 3-tap low-pass blend, a one-sample
    smear and a little noise; exact zeros of the reference stay zero (silence stays silent)."""
    rng = np.random.default_rng([seed, 99])
    padded = np.pad(reference, [(0, 0), (0, 0), (1, 1)])
    lowpass = (padded[..., :-2] + padded[..., 1:-1] + padded[..., 2:]) / 3.0
    estimate = 0.85 * reference + 0.25 * lowpass + 0.02 * rng.standard_normal(reference.shape)
    estimate = np.where(reference == 0, 0.0, estimate)
    return estimate.astype(np.float32)


def _silence_padded(sample_rate: int, seconds: float, pad_seconds: float, seed: int) -> np.ndarray:
    pad = np.zeros(int(pad_seconds * sample_rate), np.float32)
    return np.concatenate([pad, signals.speech_like(sample_rate, seconds, seed), pad])


# name -> (sample rate, function of nothing returning the reference [B, C, T]). Short signals (the main
# suite must stay fast); the windows up to 2048 need more than 1024 samples.
_REFERENCES = {
    "speech_44k": (44100, lambda: np.stack([signals.speech_like(44100, 0.1, s)[None] for s in (0, 1)])),
    "music_24k": (24000, lambda: np.stack([signals.music_like(24000, 0.15, s)[None] for s in (3, 4)])),
    "silence_padded_16k": (16000, lambda: _silence_padded(16000, 0.1, 0.06, 5)[None, None]),
    "stereo_44k": (44100, lambda: np.stack([signals.stereo(44100, 0.08, s) for s in (6, 7)])),
}
CASES = list(_REFERENCES)


def case(name: str) -> tuple[np.ndarray, np.ndarray, int]:
    """``(estimate, reference, sample_rate)``, audio ``[B, C, T]`` float32."""
    sample_rate, build = _REFERENCES[name]
    reference = np.ascontiguousarray(build(), dtype=np.float32)
    return perturb(reference, sum(map(ord, name))), reference, sample_rate


# Random discriminator outputs: per sub-discriminator, a list of feature maps [B, C, H, W] whose last
# entry is the score map, shaped like the multi-period (6 maps) and multi-band (6 maps here) kinds.
GAN_SEEDS = (0, 1)


def gan_outputs(seed: int, batch: int = 2) -> tuple[list[list[np.ndarray]], list[list[np.ndarray]]]:
    """``(d_fake, d_real)`` float32; real scores near 1 and fake near 0, as in training."""
    rng = np.random.default_rng([seed, 7])
    shapes = [
        [(batch, 32, 9, 2), (batch, 128, 3, 2), (batch, 512, 1, 2), (batch, 1024, 1, 2), (batch, 1024, 1, 2), (batch, 1, 1, 2)],
        [(batch, 32, 7, 3), (batch, 128, 3, 3), (batch, 512, 1, 3), (batch, 1024, 1, 3), (batch, 1024, 1, 3), (batch, 1, 1, 3)],
        [(batch, 32, 11, 16), (batch, 32, 11, 8), (batch, 32, 11, 4), (batch, 32, 11, 2), (batch, 32, 11, 2), (batch, 1, 11, 2)],
    ]
    d_fake, d_real = [], []
    for maps in shapes:
        fake = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in maps]
        real = [(rng.standard_normal(s) * 0.5).astype(np.float32) for s in maps]
        fake[-1] = (0.2 + 0.3 * rng.standard_normal(maps[-1])).astype(np.float32)
        real[-1] = (0.8 + 0.3 * rng.standard_normal(maps[-1])).astype(np.float32)
        d_fake.append(fake)
        d_real.append(real)
    return d_fake, d_real
