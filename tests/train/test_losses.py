"""jaxdac.train.losses against the original's dac.nn.loss (golden values in tests/fixtures/losses.npz, made by
scripts/make_fixtures_losses.py from the inputs of loss_cases.py), and their gradients against finite
differences in float64."""

from __future__ import annotations

import dataclasses

import jax
from jax.flatten_util import ravel_pytree
import jax.numpy as jnp
import numpy as np
import pytest

import loss_cases as cases
from jaxdac.train import losses as L

RELATIVE = 1e-4  # acceptance: every loss within 1e-4 relative of the original's


@pytest.fixture(scope="module")
def golden():
    with np.load(cases.FIXTURE) as data:
        return dict(data)


def _config(kind: str, name: str):
    table = {"mel": (L.MelLossConfig, cases.MEL_CONFIGS), "stft": (L.STFTLossConfig, cases.STFT_CONFIGS),
             "sisdr": (L.SISDRConfig, cases.SISDR_CONFIGS)}
    cls, configs = table[kind]
    return cls(**configs[name])


def _loss(kind: str, config_name: str, estimate, reference, sample_rate):
    if kind == "mel":
        return L.mel_loss(estimate, reference, sample_rate, _config("mel", config_name))
    if kind == "stft":
        return L.stft_loss(estimate, reference, _config("stft", config_name))
    if kind == "l1":
        return L.l1_loss(estimate, reference)
    return L.sisdr_loss(estimate, reference, _config("sisdr", config_name))


LOSSES = [("mel", c) for c in cases.MEL_CONFIGS] + [("stft", c) for c in cases.STFT_CONFIGS] + [("l1", "base")] + [
    ("sisdr", c) for c in cases.SISDR_CONFIGS
]


def test_config_defaults_are_base_yml():
    # conf/base.yml: MelSpectrogramLoss.* and MultiScaleSTFTLoss.window_lengths; the rest class defaults.
    mel = L.MelLossConfig()
    assert mel.n_mels == (5, 10, 20, 40, 80, 160, 320)
    assert mel.window_lengths == (32, 64, 128, 256, 512, 1024, 2048)
    assert mel.mel_fmin == (0,) * 7 and mel.mel_fmax == (None,) * 7
    assert (mel.pow, mel.clamp_eps, mel.mag_weight, mel.log_weight, mel.window_type) == (1.0, 1e-5, 0.0, 1.0, "hann")
    assert L.MelLossConfig(**cases.base_kwargs("mel", {})) == mel
    stft = L.STFTLossConfig()
    assert (stft.window_lengths, stft.pow, stft.clamp_eps, stft.mag_weight, stft.log_weight) == ((2048, 512), 2.0, 1e-5, 1.0, 1.0)
    assert L.STFTLossConfig(**cases.base_kwargs("stft", {})) == stft
    assert L.SISDRConfig() == L.SISDRConfig(scaling=True, zero_mean=True, clip_min=None, reduction="mean")
    # window_type None is the original's spelling of its default window.
    assert L.MelLossConfig(window_type=None) == mel
    assert hash(L.MelLossConfig(n_mels=[5, 10, 20, 40, 80, 160, 320])) == hash(mel)  # lists from YAML -> tuples


@pytest.mark.parametrize("name", cases.CASES)
def test_losses_match_the_original(golden, name):
    estimate, reference, sample_rate = cases.case(name)
    worst = 0.0
    for kind, config in LOSSES:
        expected = golden[f"{kind}/{config}/{name}"]
        value = np.asarray(_loss(kind, config, estimate, reference, sample_rate))
        assert value.dtype == np.float32
        assert value.size == expected.size, (kind, config)
        error = np.abs(value.ravel() - expected.ravel()) / np.abs(expected.ravel())
        worst = max(worst, float(error.max()))
        assert error.max() < RELATIVE, f"{kind}/{config}: {value} vs the original's {expected}"
    print(f"{name}: worst relative error {worst:.2e}")


@pytest.mark.parametrize("seed", cases.GAN_SEEDS)
def test_gan_losses_match_the_original(golden, seed):
    d_fake, d_real = cases.gan_outputs(seed)
    values = {
        "disc": L.discriminator_loss(d_fake, d_real),
        "gen": L.generator_adversarial_loss(d_fake),
        "feat": L.feature_matching_loss(d_fake, d_real),
    }
    for key, value in values.items():
        expected = golden[f"gan/{seed}/{key}"]
        assert abs(float(value) - float(expected)) <= RELATIVE * abs(float(expected)), key
    # bfloat16 discriminator outputs (mixed precision) give float32 losses.
    as_bf16 = jax.tree.map(lambda m: jnp.asarray(m, jnp.bfloat16), d_fake)
    assert L.generator_adversarial_loss(as_bf16).dtype == jnp.float32


def test_gan_losses_formulas_and_layout_independence():
    # Closed forms on tiny maps, and the same numbers for transposed (channels-last) maps.
    fake = [[jnp.full((2, 3, 4), 0.5), jnp.full((2, 1, 4), 0.25)], [jnp.ones((1, 5)), jnp.full((1, 2), -1.0)]]
    real = [[jnp.zeros((2, 3, 4)), jnp.full((2, 1, 4), 0.75)], [jnp.full((1, 5), 3.0), jnp.full((1, 2), 2.0)]]
    assert float(L.discriminator_loss(fake, real)) == pytest.approx(0.25**2 + 0.25**2 + 1.0 + 1.0)
    assert float(L.generator_adversarial_loss(fake)) == pytest.approx(0.75**2 + 4.0)
    assert float(L.feature_matching_loss(fake, real)) == pytest.approx(0.5 + 2.0)  # unnormalised sum over maps
    transposed = lambda maps: [[jnp.swapaxes(m, -1, -2) for m in d] for d in maps]  # noqa: E731
    assert float(L.feature_matching_loss(transposed(fake), transposed(real))) == pytest.approx(2.5)


# --- gradients ----------------------------------------------------------------------------------------


def _directional_check(fn, x, steps=(1e-7,), n_random=3, seed=0, tolerance=1e-4):
    """d fn / dx along the gradient's own direction and ``n_random`` random unit directions, against
    central differences in float64; the gradient must agree for one of the given step sizes."""
    value, grad = jax.jit(jax.value_and_grad(fn))(x)
    grad = np.asarray(grad)
    assert grad.dtype == np.float64 and np.isfinite(grad).all()
    rng = np.random.default_rng(seed)
    scale = np.linalg.norm(grad)
    directions = ([grad] if scale > 0 else []) + [rng.standard_normal(x.shape) for _ in range(n_random)]
    jitted = jax.jit(fn)
    scale = max(scale, 1e-6)  # an all-zero gradient (everything clipped) must meet a flat loss
    for d in directions:
        d = d / np.linalg.norm(d)
        analytic = float(np.sum(grad * d))
        errors = []
        for h in steps:
            numeric = (float(jitted(x + h * d)) - float(jitted(x - h * d))) / (2 * h)
            errors.append(abs(numeric - analytic))
        # Relative to the gradient's norm: a random direction's derivative can be near zero.
        assert min(errors) <= tolerance * scale, f"analytic {analytic}, errors {errors} (|grad| {scale})"
    return grad


def _float64_pair(name, length=1600, gain=1.0):
    estimate, reference, sample_rate = cases.case(name)
    return (estimate[..., :length].astype(np.float64) * gain, reference[..., :length].astype(np.float64) * gain,
            sample_rate)


# silence_padded_16k cut to 1600 samples: 960 samples of digital silence in both, then 640 of speech, so
# the clamp's floor holds many bins; quiet: the same at 3e-5 gain, where many bins straddle clamp_eps 1e-5
# (a clamp that let gradient through below its floor fails here).
GRADIENT_INPUTS = [("silence_padded_16k", 1.0), ("silence_padded_16k", 3e-5)]


@pytest.mark.parametrize("name, gain", GRADIENT_INPUTS)
@pytest.mark.parametrize("kind, config", [("mel", "base"), ("mel", "variant"), ("stft", "base"), ("stft", "variant")])
def test_spectral_loss_gradients_match_finite_differences(name, gain, kind, config):
    with jax.enable_x64(True):
        estimate, reference, sample_rate = _float64_pair(name, gain=gain)
        fn = lambda x: _loss(kind, config, x, reference, sample_rate)  # noqa: E731
        assert fn(estimate).dtype == jnp.float64
        # Near clamp_eps the log's curvature is ~1 / eps^2: smaller steps, still far above float64 noise.
        _directional_check(fn, estimate, steps=(1e-8, 1e-9) if gain < 1 else (1e-7, 1e-8))


@pytest.mark.parametrize("name, gain", GRADIENT_INPUTS)
def test_waveform_loss_gradients_match_finite_differences(name, gain):
    with jax.enable_x64(True):
        estimate, reference, _ = _float64_pair(name, gain=gain)
        # Piecewise linear: exact unless a step crosses a kink, so try steps down to far below the gaps.
        grad = _directional_check(lambda x: L.l1_loss(x, reference), estimate, steps=(1e-7, 1e-9, 1e-11))
        # Where the estimate equals the reference (digital silence in both) the original's gradient is 0.
        tie = estimate == reference
        assert np.all(grad[tie] == 0) and np.all(np.abs(grad[~tie]) == 1 / estimate.size)


@pytest.mark.parametrize("config", list(cases.SISDR_CONFIGS))
def test_sisdr_gradients_match_finite_differences(config):
    with jax.enable_x64(True):
        estimate, reference, _ = _float64_pair("music_24k", length=3600)
        cfg = _config("sisdr", config)
        _directional_check(lambda x: jnp.sum(L.sisdr_loss(x, reference, cfg)), estimate)
        # With clip_min between the two items' losses, the clipped item passes no gradient, the other does.
        per_item = np.asarray(L.sisdr_loss(estimate, reference, dataclasses.replace(cfg, clip_min=None, reduction="none")))
        clip = dataclasses.replace(cfg, clip_min=float(per_item.mean()))
        grad = np.asarray(jax.grad(lambda x: jnp.sum(L.sisdr_loss(x, reference, clip)))(estimate))
        clipped = per_item < clip.clip_min
        assert clipped.sum() == 1
        assert np.all(grad[clipped] == 0) and np.abs(grad[~clipped]).max() > 0


def test_gan_loss_gradients():
    with jax.enable_x64(True):
        d_fake, d_real = jax.tree.map(lambda m: np.asarray(m, np.float64), cases.gan_outputs(0, batch=1))
        for fn in (
            lambda f: L.discriminator_loss(f, d_real),
            lambda f: L.generator_adversarial_loss(f),
            lambda f: L.feature_matching_loss(f, d_real),
        ):
            # Flatten the fake maps into one vector for the directional check.
            flat, unravel = ravel_pytree(d_fake)
            _directional_check(lambda v: fn(unravel(v)), flat, steps=(1e-6,))
        for fn in (lambda r: L.discriminator_loss(d_fake, r),):
            flat, unravel = ravel_pytree(d_real)
            _directional_check(lambda v: fn(unravel(v)), flat, steps=(1e-6,))

        # The feature loss detaches the real maps: not a single nonzero gradient reaches them, although its
        # value depends on them.
        grad_real = jax.grad(lambda r: L.feature_matching_loss(d_fake, r))(d_real)
        assert all(np.all(np.asarray(g) == 0) for g in jax.tree.leaves(grad_real))
        assert float(L.feature_matching_loss(d_fake, d_real)) != float(L.feature_matching_loss(d_fake, d_fake))
        # Scores only: the LSGAN losses ignore the non-final maps; the feature loss ignores the scores.
        for fn in (lambda f: L.discriminator_loss(f, d_real), L.generator_adversarial_loss):
            grads = jax.grad(fn)(d_fake)
            assert all(np.all(np.asarray(g) == 0) for maps in grads for g in maps[:-1])
        grads = jax.grad(lambda f: L.feature_matching_loss(f, d_real))(d_fake)
        assert all(np.all(np.asarray(maps[-1]) == 0) for maps in grads)


def test_losses_jit_and_differentiate_in_float32():
    estimate, reference, sample_rate = cases.case("music_24k")

    @jax.jit
    def total(x, y):
        return L.mel_loss(x, y, sample_rate) + L.stft_loss(x, y) + L.l1_loss(x, y) + L.sisdr_loss(x, y)

    value, grad = jax.value_and_grad(total)(estimate, reference)
    assert value.dtype == jnp.float32 and grad.dtype == jnp.float32 and grad.shape == estimate.shape
    assert np.isfinite(np.asarray(grad)).all()
    assert float(L.mel_loss(reference, reference, sample_rate)) == 0.0


# --- weights and bad input ----------------------------------------------------------------------------


def test_loss_weights():
    weights = L.LossWeights()
    assert weights.to_dict() == {
        "mel/loss": 15.0, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0, "vq/commitment_loss": 0.25,
        "vq/codebook_loss": 1.0, "stft/loss": 0.0, "waveform/loss": 0.0,
    }
    assert weights["vq/commitment_loss"] == 0.25
    assert L.LossWeights.from_dict(weights.to_dict()) == weights
    # base.yml's lambdas name five metrics; as in the original, the unnamed two have no weight.
    base_yml = {"mel/loss": 15.0, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0, "vq/commitment_loss": 0.25, "vq/codebook_loss": 1.0}
    assert L.LossWeights.from_dict(base_yml) == weights
    assert L.LossWeights.from_dict({"mel/loss": 1}) == L.LossWeights(1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    metrics = {name: jnp.asarray(float(i + 1)) for i, name in enumerate(L.LossWeights.METRICS)}
    assert float(weights.total(metrics)) == pytest.approx(15 * 1 + 2 * 2 + 1 * 3 + 0.25 * 4 + 1 * 5)
    with pytest.raises(ValueError, match="unknown loss weight.*'mel'"):
        L.LossWeights.from_dict({"mel": 15.0})
    with pytest.raises(KeyError, match="adv/gen_loss"):
        weights.total({k: v for k, v in metrics.items() if k != "adv/gen_loss"})
    with pytest.raises(KeyError, match="known metrics"):
        weights["mel"]
    with pytest.raises(ValueError, match="finite"):
        L.LossWeights(mel=float("nan"))


def test_bad_input_is_one_clear_error():
    x = np.zeros((1, 1, 4000), np.float32)
    with pytest.raises(ValueError, match=r"audio \[B, C, T\] of one shape"):
        L.mel_loss(x, x[0], 44100)
    with pytest.raises(ValueError, match=r"audio \[B, C, T\] of one shape"):
        L.stft_loss(x, np.zeros((1, 1, 3999), np.float32))
    with pytest.raises(ValueError, match="at least 1025 samples"):
        L.mel_loss(x[..., :1024], x[..., :1024], 44100)
    with pytest.raises(ValueError, match="sample_rate"):
        L.mel_loss(x, x, 44100.0)
    with pytest.raises(ValueError, match="one entry per scale"):
        L.MelLossConfig(n_mels=(80,))
    with pytest.raises(ValueError, match="window_type"):
        L.STFTLossConfig(window_type="hamming")
    with pytest.raises(ValueError, match="window lengths"):
        L.STFTLossConfig(window_lengths=(2048, 2))
    with pytest.raises(ValueError, match="clamp_eps"):
        L.MelLossConfig(clamp_eps=0.0)
    with pytest.raises(ValueError, match="reduction"):
        L.SISDRConfig(reduction="max")
    maps = [[np.zeros((1, 2)), np.zeros((1, 1))]]
    with pytest.raises(ValueError, match="1 and 2 sub-discriminators"):
        L.discriminator_loss(maps, maps * 2)
    with pytest.raises(ValueError, match="2 fake and 1 real feature maps"):
        L.feature_matching_loss(maps, [maps[0][:1]])
    with pytest.raises(ValueError, match=r"fake \(1, 2\) vs real \(1, 3\)"):
        L.feature_matching_loss(maps, [[np.zeros((1, 3)), np.zeros((1, 1))]])
    with pytest.raises(ValueError, match="no feature maps"):
        L.generator_adversarial_loss([[]])
