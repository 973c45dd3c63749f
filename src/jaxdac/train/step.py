"""The GAN training step of the original (``scripts/train.py::train_loop``), as one jitted function.

    state = init_state(generator, discriminator, StepConfig())
    state, metrics = train_step(state, audio, key)      # audio [B, 1, T] at the model's rate

Order and numbers are the original's, step for step:

1. generator forward with quantiser dropout (``key`` draws it);
2. discriminator loss on the *detached* reconstruction and on the real audio (LSGAN), its gradient,
   clipping to global norm 10, an AdamW update;
3. the generator's losses with the discriminator *as just updated*: multi-scale mel, adversarial and
   feature matching (plus the multi-scale STFT and waveform L1, logged with weight 0), commitment and
   codebook losses; total = 15 mel + 2 feat + 1 gen + 0.25 commitment + 1 codebook (``LossWeights``);
   its gradient, clipping to global norm 1e3, an AdamW update.

Both optimisers are AdamW (lr 1e-4, betas 0.8/0.99, eps 1e-8, weight decay 0.01 on every parameter)
with the learning rate decayed by 0.999996 per step (PyTorch's ``ExponentialLR``, stepped after each
update). Differences from the original that change no number: the generator's forward runs once and its
backward pass is a VJP pulled after the discriminator update (PyTorch keeps the graph alive the same way);
the discriminator's real-audio features in step 3 are computed without a backward pass; no gradient of
the generator's loss is computed for the discriminator's parameters (PyTorch computes and discards it);
losses with weight 0 are computed outside the gradient.

The state is a pytree of arrays (parameters and optimiser states of both models, the step count) with
the two models' graph definitions and the :class:`StepConfig` as static fields; ``train_step`` donates
it, so the old state's buffers are reused for the new one.
"""

from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx, struct

from jaxdac.config import DACConfig, DiscriminatorConfig
from jaxdac.nn.codec import DAC
from jaxdac.nn.discriminator import Discriminator
from jaxdac.nn.precision import cast_for_compute
from jaxdac.train import losses

__all__ = [
    "OptimizerConfig",
    "StepConfig",
    "TrainState",
    "NonFiniteLossError",
    "init_state",
    "train_step",
    "learning_rate",
    "METRICS",
]

# What train_step reports, under the original's names (TensorBoard adds "/train").
METRICS = (
    "adv/disc_loss",
    "adv/feat_loss",
    "adv/gen_loss",
    "loss",
    "mel/loss",
    "other/batch_size",
    "other/grad_norm",
    "other/grad_norm_d",
    "other/learning_rate",
    "stft/loss",
    "vq/codebook_loss",
    "vq/commitment_loss",
    "waveform/loss",
)
_COMPUTE_DTYPES = ("float32", "bfloat16")

# How many times the step has been traced, per batch shape: a test asserts one trace per shape.
TRACES: collections.Counter = collections.Counter()


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """AdamW with a per-step exponential learning-rate decay and global-norm gradient clipping.

    Defaults are the original's ``conf/base.yml`` (``AdamW.*``, ``ExponentialLR.gamma``) and torch's
    AdamW defaults it relies on (eps, weight decay). ``grad_clip`` is hard-coded in the original's
    script: 1e3 for the generator, 10 for the discriminator.
    """

    learning_rate: float = 1e-4
    betas: tuple[float, float] = (0.8, 0.99)
    eps: float = 1e-8
    weight_decay: float = 0.01
    gamma: float = 0.999996
    grad_clip: float = 1e3

    def __post_init__(self):
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        problems = []
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            problems.append(f"betas must be two numbers in [0, 1), got {self.betas}")
        if not self.eps > 0 or self.weight_decay < 0:
            problems.append("eps must be positive and weight_decay non-negative")
        if not 0 < self.gamma <= 1:
            problems.append(f"gamma must be in (0, 1], got {self.gamma}")
        if not self.grad_clip > 0:
            problems.append(f"grad_clip must be positive, got {self.grad_clip}")
        if problems:
            raise ValueError("invalid optimizer config: " + "; ".join(problems))

    def learning_rate_at(self, count):
        """The learning rate of update ``count`` (0 for the first): ``lr * gamma**count``.

        Computed as ``exp(count * log(gamma))`` with the log taken in double precision, so it does not
        drift from PyTorch's (double-precision) ``ExponentialLR`` over hundreds of thousands of steps, as
        ``gamma**count`` with a float32 ``gamma`` would (0.999996 is 6e-9 off in float32: 0.3% after 400k).
        """
        return self.learning_rate * jnp.exp(jnp.asarray(count, jnp.float32) * np.float32(math.log(self.gamma)))

    def transform(self) -> optax.GradientTransformation:
        """The AdamW of ``torch.optim.AdamW``: decoupled weight decay on every parameter, bias-corrected
        moments, ``eps`` outside the square root. Gradient clipping is done by the step (it logs the norm)."""
        return optax.adamw(
            self.learning_rate_at, b1=self.betas[0], b2=self.betas[1], eps=self.eps, weight_decay=self.weight_decay
        )


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """Everything the step computes with, defaults from the original's ``conf/base.yml``.

    ``quantizer_dropout``: None trains with the generator's own value (its config's, e.g. a
    checkpoint's); a number overrides it. ``compute_dtype="bfloat16"``: mixed precision, the convolutions
    of both models in bfloat16 with float32 parameters, optimiser states, quantiser and losses.
    """

    weights: losses.LossWeights = losses.LossWeights()
    mel: losses.MelLossConfig = losses.MelLossConfig()
    stft: losses.STFTLossConfig = losses.STFTLossConfig()
    generator_optimizer: OptimizerConfig = OptimizerConfig(grad_clip=1e3)
    discriminator_optimizer: OptimizerConfig = OptimizerConfig(grad_clip=10.0)
    quantizer_dropout: float | None = None
    compute_dtype: str = "float32"

    def __post_init__(self):
        if self.compute_dtype not in _COMPUTE_DTYPES:
            raise ValueError(f"compute_dtype must be one of {', '.join(_COMPUTE_DTYPES)}, got {self.compute_dtype!r}")
        if self.quantizer_dropout is not None and not 0.0 <= self.quantizer_dropout <= 1.0:
            raise ValueError(f"quantizer_dropout must be in [0, 1], got {self.quantizer_dropout}")


@struct.dataclass
class TrainState:
    """Both models' parameters and optimiser states, and the number of steps taken."""

    step: jax.Array  # int32 []
    generator: nnx.State
    discriminator: nnx.State
    generator_opt: Any
    discriminator_opt: Any
    generator_def: nnx.GraphDef = struct.field(pytree_node=False)
    discriminator_def: nnx.GraphDef = struct.field(pytree_node=False)
    config: StepConfig = struct.field(pytree_node=False)
    generator_config: DACConfig = struct.field(pytree_node=False)
    discriminator_config: DiscriminatorConfig = struct.field(pytree_node=False)

    def generator_model(self) -> DAC:
        """The generator as a module (sharing this state's arrays), e.g. to encode or to export."""
        return nnx.merge(self.generator_def, self.generator, copy=True)

    def discriminator_model(self) -> Discriminator:
        return nnx.merge(self.discriminator_def, self.discriminator, copy=True)

    @property
    def sample_rate(self) -> int:
        return self.generator_config.sample_rate

    @property
    def minimum_length(self) -> int:
        """Fewest samples per excerpt the step accepts: the discriminator's STFTs reflect-pad by up to
        5/8 of their window and its period reshapes by up to the period, and reflection needs more
        samples than it pads; the longest window is a bound for both."""
        return max(max(self.discriminator_config.fft_sizes, default=1), max(self.discriminator_config.periods, default=0) + 1)


class NonFiniteLossError(FloatingPointError):
    """A loss or gradient norm of a step is NaN or infinite. ``state`` is the state that step returned."""

    def __init__(self, message: str, state: TrainState | None = None, metrics: dict | None = None):
        super().__init__(message)
        self.state = state
        self.metrics = metrics


def init_state(generator: DAC, discriminator: Discriminator, config: StepConfig = StepConfig()) -> TrainState:
    """A fresh training state: copies of the models' parameters, zeroed optimiser states, step 0.

    The models are left as they are and stay usable: the state holds copies (``train_step`` donates the
    state's buffers, which would otherwise invalidate the modules' own arrays).
    """
    if not isinstance(generator, DAC) or not isinstance(discriminator, Discriminator):
        raise TypeError(
            f"init_state takes a jaxdac DAC and a jaxdac Discriminator, got {type(generator).__name__} "
            f"and {type(discriminator).__name__}"
        )
    if generator.sample_rate != discriminator.config.sample_rate:
        raise ValueError(
            f"the generator runs at {generator.sample_rate} Hz but the discriminator is configured for "
            f"{discriminator.config.sample_rate} Hz; set the discriminator's sample_rate to the generator's"
        )
    generator_def, generator_params = nnx.split(generator)
    generator_params = jax.tree.map(jnp.copy, generator_params)
    if config.quantizer_dropout is not None:
        # Dropout is a static attribute of the quantiser: set it on a copy of the module.
        copy = nnx.merge(generator_def, generator_params)
        copy.quantizer.quantizer_dropout = config.quantizer_dropout
        copy.config = copy.config.replace(quantizer_dropout=config.quantizer_dropout)
        generator_def, generator_params = nnx.split(copy)
    discriminator_def, discriminator_params = nnx.split(discriminator)
    discriminator_params = jax.tree.map(jnp.copy, discriminator_params)
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        generator=generator_params,
        discriminator=discriminator_params,
        generator_opt=config.generator_optimizer.transform().init(generator_params),
        discriminator_opt=config.discriminator_optimizer.transform().init(discriminator_params),
        generator_def=generator_def,
        discriminator_def=discriminator_def,
        config=config,
        generator_config=nnx.merge(generator_def, generator_params).config,
        discriminator_config=discriminator.config,
    )


def learning_rate(state: TrainState) -> float:
    """The generator's learning rate for the next step."""
    return float(state.config.generator_optimizer.learning_rate_at(state.step))


# --- the step -----------------------------------------------------------------------------------------


def _update(config: OptimizerConfig, grads, opt_state, params):
    """Clip as ``torch.nn.utils.clip_grad_norm_`` (scale by ``max / (norm + 1e-6)`` when that is below 1),
    then one AdamW update. Returns the new parameters and optimiser state and the norm before clipping."""
    norm = optax.tree.norm(grads)
    scale = jnp.minimum(1.0, config.grad_clip / (norm + 1e-6))
    grads = jax.tree.map(lambda g: g * scale, grads)
    updates, opt_state = config.transform().update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, norm


def _split_batch(fmaps, n: int):
    """Feature maps of a concatenated [fake; real] batch -> (fake maps, real maps)."""
    fake = [[f[:n] for f in maps] for maps in fmaps]
    real = [[f[n:] for f in maps] for maps in fmaps]
    return fake, real


def _train_step(state: TrainState, audio: jax.Array, key: jax.Array, with_gradients: bool = False):
    TRACES[audio.shape, state.config.compute_dtype, with_gradients] += 1
    config = state.config
    weights = config.weights
    dtype = None if config.compute_dtype == "float32" else jnp.dtype(config.compute_dtype)
    batch = audio.shape[0]

    def discriminator(params) -> Discriminator:
        model = nnx.merge(state.discriminator_def, params, copy=True)  # cast_for_compute must not touch params
        if dtype is not None:
            cast_for_compute(model, dtype)
        return model

    # 1. Generator forward. Its backward pass is pulled through this VJP once the loss is known.
    def generate(params):
        model = nnx.merge(state.generator_def, params, copy=True)
        if dtype is not None:
            cast_for_compute(model, dtype)
        out = model(audio, train=True, key=key, dtype=dtype)
        return out.audio.astype(jnp.float32), out.commitment_loss, out.codebook_loss

    (recons, commitment, codebook), pullback = jax.vjp(generate, state.generator)

    # 2. Discriminator step, on the detached reconstruction and the real audio in one batch.
    fake = jax.lax.stop_gradient(recons)

    def discriminator_objective(params):
        d_fake, d_real = _split_batch(discriminator(params)(jnp.concatenate([fake, audio])), batch)
        return losses.discriminator_loss(d_fake, d_real)

    disc_loss, d_grads = jax.value_and_grad(discriminator_objective)(state.discriminator)
    d_params, d_opt, d_norm = _update(config.discriminator_optimizer, d_grads, state.discriminator_opt, state.discriminator)

    # 3. Generator losses with the updated discriminator; the real audio's features are constants.
    updated = discriminator(d_params)
    d_real = jax.lax.stop_gradient(updated(audio))
    logged_only = {}
    if weights.stft == 0:
        logged_only["stft/loss"] = losses.stft_loss(fake, audio, config.stft)
    if weights.waveform == 0:
        logged_only["waveform/loss"] = losses.l1_loss(fake, audio)

    def generator_objective(recons):
        d_fake = updated(recons)
        terms = {
            "mel/loss": losses.mel_loss(recons, audio, state.sample_rate, config.mel),
            "adv/gen_loss": losses.generator_adversarial_loss(d_fake),
            "adv/feat_loss": losses.feature_matching_loss(d_fake, d_real),
        }
        if weights.stft != 0:
            terms["stft/loss"] = losses.stft_loss(recons, audio, config.stft)
        if weights.waveform != 0:
            terms["waveform/loss"] = losses.l1_loss(recons, audio)
        return sum(weights[name] * value for name, value in terms.items()), terms

    (adversarial_and_spectral, terms), recons_grad = jax.value_and_grad(generator_objective, has_aux=True)(recons)
    total = adversarial_and_spectral + weights.commitment * commitment + weights.codebook * codebook
    # d total / d params: the losses' gradient w.r.t. the reconstruction, and the VQ losses' weights.
    (g_grads,) = pullback((recons_grad, jnp.asarray(weights.commitment, commitment.dtype),
                           jnp.asarray(weights.codebook, codebook.dtype)))
    g_params, g_opt, g_norm = _update(config.generator_optimizer, g_grads, state.generator_opt, state.generator)

    step = state.step + 1
    metrics = {
        **terms,
        **logged_only,
        "adv/disc_loss": disc_loss,
        "vq/commitment_loss": commitment,
        "vq/codebook_loss": codebook,
        "loss": total,
        "other/grad_norm": g_norm,
        "other/grad_norm_d": d_norm,
        # What the original logs: the rate after its scheduler stepped, i.e. the next update's.
        "other/learning_rate": config.generator_optimizer.learning_rate_at(step),
        "other/batch_size": jnp.asarray(batch, jnp.float32),
    }
    new_state = state.replace(
        step=step, generator=g_params, discriminator=d_params, generator_opt=g_opt, discriminator_opt=d_opt
    )
    metrics = {name: metrics[name] for name in sorted(metrics)}
    if with_gradients:
        return new_state, metrics, {"generator": g_grads, "discriminator": d_grads}
    return new_state, metrics


_jitted_step = jax.jit(_train_step, donate_argnums=0, static_argnames="with_gradients")


def check_audio(state: TrainState, audio, sample_rate: int | None = None) -> None:
    """Raise ``ValueError`` with one line if ``audio`` cannot be a training batch for ``state``."""
    model_rate = state.sample_rate
    shape = tuple(getattr(audio, "shape", ()))
    if len(shape) != 3 or shape[1] != 1 or shape[0] < 1:
        raise ValueError(f"training audio must be [batch, 1, samples] (mono), got shape {shape}")
    if not jnp.issubdtype(audio.dtype, jnp.floating):
        raise ValueError(f"training audio must be floating point, got {audio.dtype}")
    if sample_rate is not None and int(sample_rate) != model_rate:
        raise ValueError(f"training audio is at {sample_rate} Hz but the model runs at {model_rate} Hz; resample it")
    shortest = state.minimum_length
    if shape[2] < shortest:
        raise ValueError(
            f"training excerpts of {shape[2]} samples are too short: the discriminator needs at least {shortest} "
            f"({shortest / model_rate:.3f} s at {model_rate} Hz)"
        )


def check_finite(metrics: dict, step: int | None = None, state: TrainState | None = None) -> None:
    """Raise :class:`NonFiniteLossError` naming the first metric that is NaN or infinite."""
    values = jax.device_get(metrics)
    for name in sorted(values):
        value = float(np.asarray(values[name]))
        if not math.isfinite(value):
            where = f"step {step}: " if step is not None else ""
            raise NonFiniteLossError(f"{where}{name} is {value}; training diverged", state=state, metrics=values)


def train_step(state: TrainState, audio, key: jax.Array, *, sample_rate: int | None = None,
               check: bool = True, return_gradients: bool = False):
    """One GAN step. ``audio`` ``[B, 1, T]`` float at the model's sample rate (``sample_rate``, when
    given, is checked against it); ``key`` draws the quantiser dropout.

    ``state`` is donated: its buffers are reused and it must not be used again. Returns the new state and
    the step's metrics (scalars, under the original's names); with ``return_gradients`` also both models'
    gradients before clipping (``{"generator": ..., "discriminator": ...}``, shaped like the parameters;
    a separately compiled variant of the step). With ``check=True`` the metrics are fetched and a NaN or
    infinite one raises :class:`NonFiniteLossError` naming it (the error carries the new state); a
    training loop that wants to overlap steps passes ``check=False`` and calls :func:`check_finite` on each
    step's metrics a step later.
    """
    check_audio(state, audio, sample_rate)
    step = int(state.step) if check else None
    out = _jitted_step(state, jnp.asarray(audio, jnp.float32), key, with_gradients=return_gradients)
    if check:
        check_finite(out[1], step + 1, out[0])
    return out
