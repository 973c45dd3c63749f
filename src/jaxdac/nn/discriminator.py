"""The GAN discriminator of DAC, in Flax NNX: multi-period, multi-scale and multi-band STFT critics.

:class:`Discriminator` runs, on the same preprocessed audio, one sub-discriminator per entry of the
config, in the original's order (``discriminators.N``):

* :class:`MPD`, one per period ``p``: the waveform folded into ``p`` columns (sample ``t`` at row
  ``t // p``, column ``t % p``), then 2-d convolutions with ``(5, 1)`` kernels, which look along rows only:
  each column, the subsequence of every ``p``-th sample, is judged on its own with shared weights (so
  they run as 1-d convolutions over the ``B * p`` columns).
* :class:`MSD`, one per rate ``r``: the waveform resampled to ``sample_rate // r`` (julius's windowed
  sinc, as audiotools does), then 1-d grouped convolutions.
* :class:`MRD`, one per FFT size: the complex STFT (Hann window, hop a quarter window, audiotools'
  ``match_stride`` framing) as two channels, real and imaginary; its frequency axis is split into bands,
  each band runs its own convolution stack, and one last convolution reads the bands concatenated.

Parameter paths are the original's state-dict keys (``discriminators.0.convs.0.0.weight_v``: the ``.0``
after the layer index is the convolution of the original's ``nn.Sequential(conv, LeakyReLU)``, which is
why every activated layer sits alone in a one-element list here). Inside, activations are channels-last:
MPD ``[B * p, T / p, C]`` (columns folded into the batch), MSD ``[B, T, C]``, MRD ``[B, frames, bins, C]``; the feature maps returned are
transposed to the original's layout. Convolutions compute in the dtype of their parameters (float32, or
bfloat16 after :func:`jaxdac.nn.precision.cast_for_compute`); the preprocessing, resampling and STFT
always run in float32.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdac.config import DiscriminatorConfig
from jaxdac.dsp.resample import resample
from jaxdac.dsp.stft import stft
from jaxdac.geometry import Conv
from jaxdac.nn.layers import WNConv1d, WNConv2d

__all__ = ["Discriminator", "MPD", "MSD", "MRD", "length_problem", "minimum_length"]

FeatureMaps = list[list[jax.Array]]
_SLOPE = 0.1  # LeakyReLU(0.1) after every convolution but the last of each sub-discriminator


def _act(x: jax.Array) -> jax.Array:
    return jax.nn.leaky_relu(x, _SLOPE)


def _compute_dtype(layer) -> jnp.dtype:
    # The dtype of a layer's (possibly cast) kernel; inputs are cast to it before each stack.
    return layer.weight_v.get_value().dtype


class MPD(nnx.Module):
    """Multi-period discriminator for one ``period`` ``p``. Feature maps ``[B, C, rows, p]``: the input folds
    into ``T // p + 1`` rows (it is always padded), each strided layer divides them by 3, rounding up."""

    def __init__(self, period: int, channels: tuple[int, ...], *, rngs: nnx.Rngs):
        self.period = period
        widths = (1, *channels)
        # Four strided (3 along time) convolutions and one unstrided, kernel 5 along time, 'same' padding.
        strides = (3, 3, 3, 3, 1)
        self.convs = nnx.List([
            nnx.List([WNConv2d(widths[i], widths[i + 1], (5, 1), (strides[i], 1), (2, 0), rngs=rngs)])
            for i in range(len(channels))
        ])
        self.conv_post = WNConv2d(widths[-1], 1, (3, 1), (1, 1), (1, 0), rngs=rngs)

    def __call__(self, x: jax.Array) -> list[jax.Array]:  # [B, T] -> maps [B, C, T', p]
        p = self.period
        # The original always pads, by a whole period when T is already a multiple of it (reflect).
        x = jnp.pad(x, ((0, 0), (0, p - x.shape[-1] % p)), mode="reflect")
        batch = x.shape[0]
        # Fold into [B, T / p, p] (row t // p, column t % p). The (k, 1) kernels never mix columns, so
        # run the stack on the B * p columns as 1-d signals [B * p, T / p, C].
        x = x.reshape(batch, -1, p).transpose(0, 2, 1).reshape(batch * p, -1, 1)
        x = x.astype(_compute_dtype(self.conv_post))
        fmap = []
        for (conv,) in self.convs:
            x = _act(conv.columns(x))
            fmap.append(x)
        fmap.append(self.conv_post.columns(x))
        # [B * p, T', C] -> the original's [B, C, T', p]
        return [f.reshape(batch, p, *f.shape[1:]).transpose(0, 3, 2, 1) for f in fmap]


# MSD layers: (out channels, kernel, stride, groups, padding), the original's fixed widths.
_MSD_LAYERS = ((16, 15, 1, 1, 7), (64, 41, 4, 4, 20), (256, 41, 4, 16, 20), (1024, 41, 4, 64, 20),
               (1024, 41, 4, 256, 20), (1024, 5, 1, 1, 2))


class MSD(nnx.Module):
    """Multi-scale waveform discriminator at ``sample_rate // rate``. Feature maps ``[B, C, T']``."""

    def __init__(self, rate: int, sample_rate: int, *, rngs: nnx.Rngs):
        self.rate = rate
        self.sample_rate = sample_rate
        convs, width = [], 1
        for out, kernel, stride, groups, padding in _MSD_LAYERS:
            spec = Conv(kernel=kernel, stride=stride, padding=padding)
            convs.append(nnx.List([WNConv1d(width, out, spec, zero_bias=False, groups=groups, rngs=rngs)]))
            width = out
        self.convs = nnx.List(convs)
        self.conv_post = WNConv1d(width, 1, Conv(kernel=3, padding=1), zero_bias=False, rngs=rngs)

    def __call__(self, x: jax.Array) -> list[jax.Array]:  # [B, T] -> maps [B, C, T']
        # audiotools' AudioSignal.resample: julius.resample_frac, skipped when the rate is unchanged.
        x = resample(x, self.sample_rate, self.sample_rate // self.rate)
        x = x[:, :, None].astype(_compute_dtype(self.conv_post))  # [B, T', 1]
        fmap = []
        for (conv,) in self.convs:
            x = _act(conv(x))
            fmap.append(x)
        fmap.append(self.conv_post(x))
        return [f.transpose(0, 2, 1) for f in fmap]


class MRD(nnx.Module):
    """Multi-band discriminator on the complex STFT of ``window_length``. Feature maps ``[B, C, frames, bins]``
    (every band's five maps in band order, then the score over all bands)."""

    def __init__(self, window_length: int, bands: tuple[tuple[int, int], ...], channels: int, *, rngs: nnx.Rngs):
        self.window_length = window_length
        self.hop_length = int(window_length * 0.25)  # the original's hop_factor 0.25
        self.bands = tuple(bands)  # [start, stop) bins
        ch = channels

        def stack():
            # Kernel (3 frames, 9 bins); three convolutions halve the bins; 'same' padding.
            layers = [WNConv2d(2, ch, (3, 9), (1, 1), (1, 4), rngs=rngs)]
            layers += [WNConv2d(ch, ch, (3, 9), (1, 2), (1, 4), rngs=rngs) for _ in range(3)]
            layers += [WNConv2d(ch, ch, (3, 3), (1, 1), (1, 1), rngs=rngs)]
            return nnx.List([nnx.List([layer]) for layer in layers])

        self.band_convs = nnx.List([stack() for _ in self.bands])
        self.conv_post = WNConv2d(ch, 1, (3, 3), (1, 1), (1, 1), rngs=rngs)

    def __call__(self, x: jax.Array) -> list[jax.Array]:  # [B, T] -> maps [B, C, frames, bins]
        spec = stft(x[:, None, :], self.window_length, self.hop_length, window="hann", match_stride=True)
        # [B, 1, bins, frames] complex -> [B, frames, bins, 2]: real and imaginary parts as two channels
        # (the original's view_as_real, rearranged "b 1 f t c -> b c t f").
        spec = jnp.stack([spec.real, spec.imag], axis=-1)[:, 0].transpose(0, 2, 1, 3)
        spec = spec.astype(_compute_dtype(self.conv_post))
        fmap, outputs = [], []
        for (start, stop), stack in zip(self.bands, self.band_convs):
            band = spec[:, :, start:stop]
            for (conv,) in stack:
                band = _act(conv(band))
                fmap.append(band)
            outputs.append(band)
        fmap.append(self.conv_post(jnp.concatenate(outputs, axis=2)))
        return [f.transpose(0, 3, 1, 2) for f in fmap]


def length_problem(config: DiscriminatorConfig, length: int) -> str | None:
    """Why ``length`` samples cannot go through the discriminator, or None if they can.

    Reflect padding needs more samples than it adds (PyTorch refuses otherwise). The period fold pads
    ``p - T % p`` samples; each STFT (audiotools' ``match_stride``) pads ``3 w / 8`` samples on the left
    and ``3 w / 8`` plus the rest of the last hop on the right, before ``torch.stft``'s centring pad of
    ``w / 2``. The right pad is not monotonic in ``T``, so neither is the set of valid lengths: the default
    discriminator takes 897..1024 samples, refuses 1025..1152 and takes every length from 1153 up.
    """
    for p in config.periods:
        if p - length % p >= length:
            return f"the period-{p} fold reflect-pads it by {p - length % p} samples"
    for w in config.fft_sizes:
        hop = int(w * 0.25)
        left = (w - hop) // 2
        right = left + math.ceil(length / hop) * hop - length
        if max(left, right) >= length or w // 2 >= length + left + right:
            return f"the {w}-point STFT reflect-pads it by {left} and {right} samples"
    return None


@functools.lru_cache(maxsize=None)
def minimum_length(config: DiscriminatorConfig) -> int:
    """The fewest samples from which every length works (see :func:`length_problem`)."""
    bound = max([p + 1 for p in config.periods] + [(w - w // 4) // 2 + w // 4 for w in config.fft_sizes] + [1])
    t = bound  # every length from here up fits: each pad is below it
    while t > 1 and length_problem(config, t - 1) is None:
        t -= 1
    return t


class Discriminator(nnx.Module):
    """All sub-discriminators of ``config``: MPDs, then MSDs, then MRDs (the original's order).

    ``discriminator(audio)`` with ``audio [B, 1, T]`` returns one list per sub-discriminator of its
    feature maps in the original's layout, the last of each list being its score map. Not jitted: call it
    inside your own jitted (and differentiated) function.
    """

    def __init__(self, config: DiscriminatorConfig = DiscriminatorConfig(), *, rngs: nnx.Rngs):
        if not isinstance(config, DiscriminatorConfig):
            raise TypeError(f"config must be a DiscriminatorConfig, got {type(config).__name__}")
        self.config = config
        discs = [MPD(p, config.mpd_channels, rngs=rngs) for p in config.periods]
        discs += [MSD(r, config.sample_rate, rngs=rngs) for r in config.rates]
        discs += [MRD(f, config.band_bins(f), config.mrd_channels, rngs=rngs) for f in config.fft_sizes]
        self.discriminators = nnx.List(discs)

    @staticmethod
    def preprocess(audio: jax.Array) -> jax.Array:  # [B, 1, T] -> [B, T]
        """Remove the DC offset, then peak-normalise each item to 0.8 (the original's 1e-9 guard)."""
        y = audio[:, 0].astype(jnp.float32)
        y = y - jnp.mean(y, axis=-1, keepdims=True)
        return 0.8 * y / (jnp.max(jnp.abs(y), axis=-1, keepdims=True) + 1e-9)

    def _check_audio(self, audio) -> None:
        shape = tuple(getattr(audio, "shape", ()))
        if len(shape) != 3 or shape[1] != 1:
            raise ValueError(f"the discriminator takes mono audio [batch, 1, samples], got shape {shape}")
        if not jnp.issubdtype(audio.dtype, jnp.floating):
            raise ValueError(f"the discriminator takes floating-point audio, got {audio.dtype}")
        problem = length_problem(self.config, shape[2])
        if problem is not None:
            raise ValueError(
                f"audio of {shape[2]} samples does not fit the discriminator: {problem}, and reflection needs "
                f"more samples than it pads (the original refuses this length too); every length from "
                f"{minimum_length(self.config)} samples up works"
            )

    def __call__(self, audio: jax.Array) -> FeatureMaps:
        self._check_audio(audio)
        x = self.preprocess(audio)
        return [d(x) for d in self.discriminators]
