"""The GAN training step against the original's (golden fixture of the tiny case), and its contract:
donation, one trace per shape, quantiser dropout, mixed precision, bad input, non-finite losses."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import train_cases
import train_parity
from train_parity import seeded_models
from jaxdac.config import PRESETS
from jaxdac.nn.quantize import dropout_counts
from jaxdac.train import step as train_step_module
from jaxdac.train.step import NonFiniteLossError, OptimizerConfig, StepConfig, init_state, train_step

CASE = "tiny"


@pytest.fixture(scope="module")
def fixture():
    return np.load(train_cases.FIXTURE)


@pytest.fixture(scope="module")
def two_steps():
    """Two steps of jaxdac from the seeded weights: (metrics per step, step 1's updates and gradients)."""
    generator, discriminator = seeded_models()
    metrics, recorded = train_parity.run_steps(init_state(generator, discriminator), CASE, train_cases.FIXTURE_STEPS, {1})
    return metrics, recorded[1]


def test_metrics_equal_the_originals(two_steps, fixture):
    ours, _ = two_steps
    theirs = json.loads(str(fixture["metrics"]))
    assert len(ours) == len(theirs) == train_cases.FIXTURE_STEPS
    for a, b in zip(ours, theirs):
        train_parity.compare_metrics(a, b)
    assert set(ours[0]) == set(train_step_module.METRICS)


def test_every_gradient_and_update_equals_the_originals(two_steps, fixture):
    _, ours = two_steps
    # The generator's are stored whole (scaled float16).
    theirs = {k: fixture[k].astype(np.float32) * float(fixture[f"scale/{k}"])
              for k in fixture.files if k.startswith(("update/generator/", "grad/generator/"))}
    assert len(theirs) == 2 * sum(k.startswith("update/generator/") for k in ours)
    train_parity.compare_step({k: v for k, v in ours.items() if k in theirs}, theirs)
    # The discriminator's as norms and samples (its tensors are large).
    names = [k.removeprefix("norm/") for k in fixture.files if k.startswith("norm/")]
    assert set(names) == {k for k in ours if "/discriminator/" in k}
    for name in names:
        flat = ours[name].ravel()
        norm = float(fixture[f"norm/{name}"])
        assert abs(np.linalg.norm(flat) - norm) <= 1e-3 * norm, name
        minimum = train_parity.UPDATE_COSINE if name.startswith("update/") else train_parity.GRADIENT_COSINE
        sample = flat[train_cases.sample_indices(name, flat.size)]
        assert train_cases.cosine(sample, fixture[f"sample/{name}"]) >= minimum, name


def test_state_is_donated_models_stay_usable_and_the_step_traces_once():
    generator, discriminator = seeded_models()
    state = init_state(generator, discriminator)
    old_leaves = jax.tree.leaves(state)
    audio = train_cases.batch(CASE)
    state, _ = train_step(state, audio, jax.random.key(0))
    assert all(leaf.is_deleted() for leaf in old_leaves)  # buffers reused for the new state
    traces = dict(train_step_module.TRACES)
    state, _ = train_step(state, audio, jax.random.key(1))
    state, _ = train_step(state, audio, jax.random.key(2))
    assert int(state.step) == 3
    assert dict(train_step_module.TRACES) == traces  # once traced for a shape, never again
    # A new batch shape is one more trace (traced here, not compiled: a compile of the step is minutes of CI).
    train_step_module._jitted_step.trace(state, jnp.asarray(audio[:1]), jax.random.key(3))
    new = {k: v - traces.get(k, 0) for k, v in train_step_module.TRACES.items() if v != traces.get(k, 0)}
    assert list(new.values()) == [1] and next(iter(new))[0] == audio[:1].shape
    generator.encode(jnp.zeros((1, 1, 4096)))  # the models handed to init_state still work


def test_a_non_finite_loss_raises_naming_the_metric():
    generator, discriminator = seeded_models()
    state = init_state(generator, discriminator)
    audio = train_cases.batch(CASE).copy()
    audio[0, 0, 100] = np.nan
    with pytest.raises(NonFiniteLossError, match=r"step 1: adv/disc_loss is nan") as e:
        train_step(state, audio, jax.random.key(0))
    assert e.value.state is not None and int(e.value.state.step) == 1


def test_bad_batches_and_models_are_one_clear_error():
    generator, discriminator = seeded_models()
    state = init_state(generator, discriminator)
    audio = train_cases.batch(CASE)
    with pytest.raises(ValueError, match=r"\[batch, 1, samples\] \(mono\), got shape \(2, 2, "):
        train_step(state, np.concatenate([audio, audio], axis=1), jax.random.key(0))
    with pytest.raises(ValueError, match=r"got shape \(\d+,\)"):
        train_step(state, audio[0, 0], jax.random.key(0))
    with pytest.raises(ValueError, match="at 16000 Hz but the model runs at 44100 Hz"):
        train_step(state, audio, jax.random.key(0), sample_rate=16000)
    with pytest.raises(ValueError, match=r"too short: the discriminator needs at least \d+"):
        train_step(state, audio[..., :100], jax.random.key(0))
    with pytest.raises(ValueError, match="floating point"):
        train_step(state, audio.astype(np.int32), jax.random.key(0))
    with pytest.raises(ValueError, match="16000 Hz but the discriminator is configured for 44100 Hz"):
        init_state(nnx.eval_shape(lambda: __import__("jaxdac").DAC(PRESETS["tiny_16khz"], rngs=nnx.Rngs(0))),
                   discriminator)
    with pytest.raises(TypeError, match="jaxdac DAC and a jaxdac Discriminator"):
        init_state(discriminator, generator)
    with pytest.raises(ValueError, match="compute_dtype"):
        StepConfig(compute_dtype="float16")
    with pytest.raises(ValueError, match="betas"):
        OptimizerConfig(betas=(0.8, 1.5))


def test_quantizer_dropout_comes_from_the_model_unless_the_config_sets_it():
    generator, discriminator = seeded_models()
    generator = nnx.merge(*nnx.split(generator))
    generator.quantizer.quantizer_dropout = 0.5  # as a checkpoint trained with dropout 0.5 loads
    assert init_state(generator, discriminator).generator_model().quantizer.quantizer_dropout == 0.5
    state = init_state(generator, discriminator, StepConfig(quantizer_dropout=0.0))
    assert state.generator_model().quantizer.quantizer_dropout == 0.0
    assert state.generator_config.quantizer_dropout == 0.0
    assert generator.quantizer.quantizer_dropout == 0.5  # the caller's model is not changed


def test_quantizer_dropout_draws_follow_the_original_rule():
    # The first int(B * p) items keep 1..N codebooks uniformly, the rest all of them (N + 1 as a bound).
    batch, n, p, draws = 10, 9, 0.5, 4000
    keys = jax.random.split(jax.random.key(0), draws)
    counts = np.asarray(jax.vmap(lambda k: dropout_counts(k, batch, n, p))(keys))  # [draws, B]
    assert (counts[:, 5:] == n + 1).all()
    dropped = counts[:, :5].ravel()
    observed = np.bincount(dropped, minlength=n + 1)[1:]
    assert observed.sum() == dropped.size and dropped.min() >= 1 and dropped.max() <= n
    expected = dropped.size / n
    chi2 = float(((observed - expected) ** 2 / expected).sum())
    assert chi2 < 26.1, (chi2, observed)  # 8 degrees of freedom: p = 0.001
    # Items are independent: the first two items' draws are uncorrelated.
    assert abs(np.corrcoef(counts[:, 0], counts[:, 1])[0, 1]) < 0.06
    assert (np.asarray(dropout_counts(None, 3, n, 0.0)) == n + 1).all()
    with pytest.raises(ValueError, match="needs a PRNG key"):
        dropout_counts(None, 4, n, 0.5)


def test_learning_rate_decays_as_torch_exponential_lr():
    config = OptimizerConfig()
    for count in (0, 1, 1000, 400_000):
        expected = 1e-4 * 0.999996**count  # double precision, as torch's scheduler
        assert float(config.learning_rate_at(count)) == pytest.approx(expected, rel=2e-6), count


def test_mixed_precision_keeps_float32_state_and_close_losses(two_steps):
    # bfloat16 convolutions in both models; parameters, optimiser states, quantiser and losses float32.
    metrics32, _ = two_steps
    generator, discriminator = seeded_models()
    state = init_state(generator, discriminator, StepConfig(compute_dtype="bfloat16"))
    audio = train_cases.batch(CASE)
    state, metrics = train_step(state, audio, jax.random.key(1))
    assert {leaf.dtype for leaf in jax.tree.leaves((state.generator, state.discriminator))} == {jnp.dtype("float32")}
    assert {leaf.dtype for leaf in jax.tree.leaves((state.generator_opt, state.discriminator_opt))
            if jnp.issubdtype(leaf.dtype, jnp.floating)} == {jnp.dtype("float32")}
    for name in ("mel/loss", "stft/loss", "adv/disc_loss", "adv/gen_loss", "adv/feat_loss", "vq/commitment_loss"):
        assert float(metrics[name]) == pytest.approx(metrics32[0][name], rel=0.05), name
