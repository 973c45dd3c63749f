"""The DAC autoencoder: encoder, residual vector quantiser and decoder, in Flax NNX.

Module and parameter paths follow the original checkpoint (``encoder.block.1.block.0.block.1.weight_v``,
``quantizer.quantizers.3.codebook.weight``, ``decoder.model.6.bias``), so the checkpoint converter is a
table of transposes. Activations are channels-last ``[B, T, C]`` inside; the public methods of
:class:`DAC` take and return channels-first arrays as the original does.

Every convolution can run *padded* (whole signals: 'same'-style padding, the training and default
inference mode) or *unpadded* (chunked inference: no padding, each layer eats its context). The mode is
an argument of each call, not state: one set of parameters serves both.

Padded, the encoder and decoder also take ``pieces``: several signals of any lengths packed into rows of
one fixed shape, each coded as if alone (see :func:`_mask`). The lengths are traced, so one compiled
program serves every clip length (:mod:`jaxdac.tokenize`). Without ``pieces`` nothing changes.

The encoder and decoder also run as streams (``stream``): a signal in fixed-size blocks, each layer
keeping between blocks the few inputs its next outputs read (``geometry.stream_step``), so every output
position is computed once and equals the padded whole-signal result (:mod:`jaxdac.streaming`).
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from flax import nnx, struct

from jaxdac import geometry
from jaxdac.config import DACConfig
from jaxdac.nn.layers import Snake, WNConv1d, WNConvTranspose1d
from jaxdac.nn.quantize import CodeLookup, ResidualVectorQuantize


def _mask(x: jax.Array, pieces: jax.Array | None) -> jax.Array:  # [B, T, C]
    """``x`` with every position outside the ``pieces`` set to zero (``x`` itself without pieces).

    ``pieces [B, K, 2]`` holds each row's signals as ``(start, length)`` at ``x``'s resolution (empty
    slots have length 0). A padded convolution reads at most its padding beyond a signal's ends, and
    there it reads zeros; zeroing the activations outside every signal before each convolution therefore
    reproduces, for each signal, its own zero padding at every layer, so its outputs equal coding it
    alone, as long as neighbouring signals stay that padding apart (``geometry.packing_gap``).
    """
    if pieces is None:
        return x
    t = jnp.arange(x.shape[1])[None, :, None]  # [1, T, 1]
    start, length = pieces[:, None, :, 0], pieces[:, None, :, 1]  # [B, 1, K]
    inside = ((t >= start) & (t < start + length)).any(-1)  # [B, T]
    return jnp.where(inside[..., None], x, jnp.zeros((), x.dtype))


def _moved(conv, pieces: jax.Array | None) -> jax.Array | None:
    """Where ``conv`` (padded) puts the ``pieces`` of its input in its output (integer maths of
    :class:`jaxdac.geometry.Conv`, on traced lengths)."""
    if pieces is None:
        return None
    start, length = pieces[..., 0], pieces[..., 1]
    return jnp.stack([conv.spec.output_start(start), conv.spec.output_length(length)], axis=-1)


def _conv(conv, x: jax.Array, padded: bool, pieces: jax.Array | None) -> jax.Array:
    return conv(_mask(x, pieces), padded)


class Position(NamedTuple):
    """Where a stream's block lies in a layer's input signal (see ``geometry.stream_step``).

    ``lag`` (static): block ``i`` of ``n`` positions covers ``[i n - lag, (i + 1) n - lag)``;
    ``step [B]``: the block's ``i``, per stream; ``total [B]``: the signal's length at this layer, or
    -1 while the end has not been pushed. Positions below 0 and from ``total`` on are the padding."""

    lag: int
    step: jax.Array
    total: jax.Array

    def first(self, n: int) -> jax.Array:  # [B]
        return self.step * n - self.lag

    def after(self, conv) -> "Position":
        lag = geometry.stream_step(conv.spec, self.lag)[0]
        total = jnp.where(self.total < 0, self.total, conv.spec.output_length(jnp.maximum(self.total, 0)))
        return Position(lag, self.step, total)


def _stream_mask(x: jax.Array, first: jax.Array, total: jax.Array) -> jax.Array:  # [B, T, C]
    """Zero the positions of ``x`` (which starts at position ``first [B]``) outside ``[0, total)``."""
    t = first[:, None] + jnp.arange(x.shape[1])[None, :]  # [B, T]
    inside = (t >= 0) & ((total[:, None] < 0) | (t < total[:, None]))
    return jnp.where(inside[..., None], x, jnp.zeros((), x.dtype))


# Up to this many outputs per block a stream's convolution runs as one matmul over gathered taps
# (WNConv1d.unfolded): with 1-8 outputs it is bound by reading the weights, which XLA's convolution does
# at a third of the memory bandwidth, and at 64 outputs of 256-384 channels the matmul is 1.2-1.5x faster;
# from 256 outputs on XLA's convolution is faster (the 44.1 kHz model's layers, this 2-core CPU).
_FEW = 64


def _stream_conv(conv, kept: jax.Array | None, x: jax.Array, at: Position):
    """One block of a padded convolution's stream: ``(kept for the next block, outputs, their Position)``.

    The block joins the inputs kept from before (zeros before the first block), positions outside the
    signal are zeroed (the padding), and the unpadded convolution of the joint gives exactly the outputs
    the block completes: ``n / s`` of them, or ``n s`` for a transposed convolution, whose unpadded
    result also holds the incomplete blocks at both ends, dropped here.
    """
    n = x.shape[1]
    keep = geometry.stream_step(conv.spec, at.lag)[1]
    if kept is None:
        kept = jnp.zeros((x.shape[0], keep, x.shape[2]), x.dtype)
    joint = _stream_mask(jnp.concatenate([kept, x], axis=1), at.first(n) - keep, at.total)
    few = not conv.spec.transpose and (conv.out_major or conv.spec.output_length(joint.shape[1], padded=False) <= _FEW)
    y = conv.unfolded(joint) if few else conv(joint, padded=False)
    if conv.spec.transpose:
        s = conv.spec.stride
        y = y[:, keep * s : (keep + n) * s]
    elif n % conv.spec.stride:
        raise ValueError(f"a stream's blocks must hold a multiple of {conv.spec.stride} positions here, got {n}")
    return joint[:, n:], y, at.after(conv)


def _check_pieces(padded: bool, pieces) -> None:
    if pieces is not None and not padded:
        raise ValueError("pieces are for padded convolutions (padded=True)")


class ResidualUnit(nnx.Module):
    def __init__(self, dim: int, dilation: int, *, rngs: nnx.Rngs):
        self.block = nnx.List([
            Snake(dim),
            WNConv1d(dim, dim, geometry.residual_conv(dilation), rngs=rngs),
            Snake(dim),
            WNConv1d(dim, dim, geometry.pointwise_conv(), rngs=rngs),
        ])

    def __call__(self, x: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:  # [B, T, C]
        y = _conv(self.block[1], self.block[0](x), padded, pieces)
        y = _conv(self.block[3], self.block[2](y), padded, _moved(self.block[1], pieces))
        # Unpadded, the dilated conv consumed 3 * dilation samples on each side: crop the skip path.
        crop = (x.shape[1] - y.shape[1]) // 2
        if crop:
            x = x[:, crop:-crop]
        return x + y

    def stream(self, state, x: jax.Array, at: Position):
        """One block (``state`` None before the first): the dilated conv waits for its right context,
        so the skip path is delayed by as much to meet it."""
        conv, pointwise, skip = state if state is not None else (None, None, None)
        conv, y, at_y = _stream_conv(self.block[1], conv, self.block[0](x), at)
        pointwise, y, _ = _stream_conv(self.block[3], pointwise, self.block[2](y), at_y)
        if skip is None:
            skip = jnp.zeros((x.shape[0], at_y.lag - at.lag, x.shape[2]), x.dtype)
        joint = jnp.concatenate([skip, x], axis=1)
        return (conv, pointwise, joint[:, x.shape[1] :]), joint[:, : x.shape[1]] + y, at_y


class EncoderBlock(nnx.Module):
    """Three residual units at ``dim // 2`` channels, then a strided conv doubling the channels."""

    def __init__(self, dim: int, stride: int, *, rngs: nnx.Rngs):
        units = [ResidualUnit(dim // 2, d, rngs=rngs) for d in geometry.RESIDUAL_DILATIONS]
        self.block = nnx.List([
            *units,
            Snake(dim // 2),
            WNConv1d(dim // 2, dim, geometry.downsample_conv(stride), rngs=rngs),
        ])

    def __call__(self, x: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:
        for unit in self.block[:3]:
            x = unit(x, padded, pieces)  # padded residual units keep the pieces where they are
        return _conv(self.block[4], self.block[3](x), padded, pieces)

    def stream(self, state, x: jax.Array, at: Position):
        state = list(state) if state is not None else [None] * 4
        for i, unit in enumerate(self.block[:3]):
            state[i], x, at = unit.stream(state[i], x, at)
        state[3], x, at = _stream_conv(self.block[4], state[3], self.block[3](x), at)
        return tuple(state), x, at


class Encoder(nnx.Module):
    """``[B, T, 1]`` audio -> ``[B, T / hop, latent_dim]``."""

    def __init__(self, d_model: int, strides: tuple[int, ...], d_latent: int, *, rngs: nnx.Rngs):
        layers = [WNConv1d(1, d_model, geometry.stem_conv(), rngs=rngs)]
        for stride in strides:
            d_model *= 2
            layers.append(EncoderBlock(d_model, stride, rngs=rngs))
        layers += [Snake(d_model), WNConv1d(d_model, d_latent, geometry.encoder_head_conv(), rngs=rngs)]
        self.block = nnx.List(layers)

    def __call__(self, x: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:
        """``pieces [B, K, 2]`` (padded only): the signals packed in each row, ``(start, length)`` in
        samples, starts and lengths multiples of the hop; each gets the frames of coding it alone."""
        _check_pieces(padded, pieces)
        x = _conv(self.block[0], x, padded, pieces)
        for block in self.block[1:-2]:
            x = block(x, padded, pieces)
            pieces = _moved(block.block[4], pieces)  # the block's strided conv
        return _conv(self.block[-1], self.block[-2](x), padded, pieces)

    def stream(self, state, x: jax.Array, at: Position):
        """A block of ``[B, n, 1]`` audio (``n`` a multiple of the hop) -> ``[B, n / hop, latent_dim]``
        latent frames, ``geometry.stream_lag`` frames behind (see :mod:`jaxdac.streaming`)."""
        state = list(state) if state is not None else [None] * len(self.block)
        state[0], x, at = _stream_conv(self.block[0], state[0], x, at)
        for i in range(1, len(self.block) - 2):
            state[i], x, at = self.block[i].stream(state[i], x, at)
        state[-1], x, at = _stream_conv(self.block[-1], state[-1], self.block[-2](x), at)
        return tuple(state), x, at


class DecoderBlock(nnx.Module):
    """A transposed conv upsampling by ``stride`` to ``output_dim`` channels, then three residual units."""

    def __init__(self, input_dim: int, output_dim: int, stride: int, *, rngs: nnx.Rngs):
        self.block = nnx.List([
            Snake(input_dim),
            WNConvTranspose1d(input_dim, output_dim, geometry.upsample_conv(stride), rngs=rngs),
            *[ResidualUnit(output_dim, d, rngs=rngs) for d in geometry.RESIDUAL_DILATIONS],
        ])

    def __call__(self, x: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:
        x = _conv(self.block[1], self.block[0](x), padded, pieces)
        pieces = _moved(self.block[1], pieces)
        for unit in self.block[2:]:
            x = unit(x, padded, pieces)
        return x

    def stream(self, state, x: jax.Array, at: Position):
        state = list(state) if state is not None else [None] * 4
        state[0], x, at = _stream_conv(self.block[1], state[0], self.block[0](x), at)
        for i, unit in enumerate(self.block[2:], start=1):
            state[i], x, at = unit.stream(state[i], x, at)
        return tuple(state), x, at


class Decoder(nnx.Module):
    """``[B, F, latent_dim]`` -> ``[B, ~F * hop, 1]`` audio in [-1, 1] (final tanh)."""

    def __init__(self, input_channel: int, channels: int, rates: tuple[int, ...], d_out: int = 1, *, rngs: nnx.Rngs):
        layers = [WNConv1d(input_channel, channels, geometry.stem_conv(), zero_bias=True, rngs=rngs)]
        output_dim = channels
        for i, stride in enumerate(rates):
            input_dim, output_dim = channels // 2**i, channels // 2 ** (i + 1)
            layers.append(DecoderBlock(input_dim, output_dim, stride, rngs=rngs))
        layers += [Snake(output_dim), WNConv1d(output_dim, d_out, geometry.decoder_head_conv(), rngs=rngs)]
        self.model = nnx.List(layers)  # the original's index 7 is a parameter-free Tanh

    def __call__(self, x: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:
        """``pieces [B, K, 2]`` (padded only): the latent sequences packed in each row, ``(start,
        length)`` in frames; each decodes to the audio of decoding it alone, at ``hop * start``."""
        _check_pieces(padded, pieces)
        x = _conv(self.model[0], x, padded, pieces)
        for block in self.model[1:-2]:
            x = block(x, padded, pieces)
            pieces = _moved(block.block[1], pieces)  # the block's transposed conv
        return jnp.tanh(_conv(self.model[-1], self.model[-2](x), padded, pieces))

    def stream(self, state, x: jax.Array, at: Position):
        """A block of ``[B, n, latent_dim]`` frames -> ``[B, n hop, 1]`` audio, ``geometry.stream_lag``
        samples behind (see :mod:`jaxdac.streaming`)."""
        state = list(state) if state is not None else [None] * len(self.model)
        state[0], x, at = _stream_conv(self.model[0], state[0], x, at)
        for i in range(1, len(self.model) - 2):
            state[i], x, at = self.model[i].stream(state[i], x, at)
        state[-1], x, at = _stream_conv(self.model[-1], state[-1], self.model[-2](x), at)
        return tuple(state), jnp.tanh(x), at


@struct.dataclass
class EncodeOutput:
    """Result of :meth:`DAC.encode`, channels-first as the original.

    ``z`` ``[B, D, F]``: quantised latent (decoder input); ``codes`` ``[B, N, F]`` int32;
    ``latents`` ``[B, N*d, F]``: projected latents before quantisation; ``commitment_loss`` and
    ``codebook_loss``: scalars.
    """

    z: jax.Array
    codes: jax.Array
    latents: jax.Array
    commitment_loss: jax.Array
    codebook_loss: jax.Array


@struct.dataclass
class ForwardOutput:
    """Result of :meth:`DAC.__call__` (a training forward pass), channels-first."""

    audio: jax.Array
    z: jax.Array
    codes: jax.Array
    latents: jax.Array
    commitment_loss: jax.Array
    codebook_loss: jax.Array


class DAC(nnx.Module):
    """Descript Audio Codec.

    ``encode`` and ``decode`` are compiled (``nnx.jit``, one trace per input shape and option set), so
    calling them in a loop costs no per-layer Python work; inside a user's own ``jit`` they inline.
    """

    def __init__(self, config: DACConfig = DACConfig(), *, rngs: nnx.Rngs):
        self.config = config
        self.encoder = Encoder(config.encoder_dim, config.encoder_rates, config.latent_dim, rngs=rngs)
        self.quantizer = ResidualVectorQuantize(
            config.latent_dim,
            config.n_codebooks,
            config.codebook_size,
            config.codebook_dims,
            config.quantizer_dropout,
            rngs=rngs,
        )
        self.decoder = Decoder(config.latent_dim, config.decoder_dim, config.decoder_rates, rngs=rngs)

    # --- geometry, derived from the config -------------------------------------------------------
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def n_codebooks(self) -> int:
        return self.config.n_codebooks

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def delay(self) -> int:
        return geometry.delay(self.config)

    # --- channels-last building blocks (traceable; used by training and chunked inference) ---------
    def encode_latent(self, audio: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:
        """``[B, T, 1]`` -> ``[B, F, D]``; ``pieces`` as for :class:`Encoder`."""
        return self.encoder(audio, padded, pieces)

    def decode_latent(self, z: jax.Array, padded: bool = True, pieces: jax.Array | None = None) -> jax.Array:
        """``[B, F, D]`` -> ``[B, T, 1]``; ``pieces`` as for :class:`Decoder`."""
        return self.decoder(z, padded, pieces)

    def preprocess(self, audio: jax.Array) -> jax.Array:  # [B, 1, T] -> [B, 1, T'] with T' a hop multiple
        """Right-pad with zeros to a multiple of the hop, as the original's ``preprocess``."""
        length = audio.shape[-1]
        pad = geometry.padded_input_length(self.config, length) - length
        return jnp.pad(audio, ((0, 0), (0, 0), (0, pad))) if pad else audio

    def _check_audio(self, audio: jax.Array) -> None:
        if audio.ndim != 3 or audio.shape[1] != 1:
            raise ValueError(f"audio must be [batch, 1, samples], got shape {tuple(audio.shape)}")

    # --- public, compiled ---------------------------------------------------------------------------
    @nnx.jit(static_argnames=("n_quantizers", "padded"))
    def encode(self, audio: jax.Array, n_quantizers: int | None = None, padded: bool = True) -> EncodeOutput:
        """Audio ``[B, 1, T]`` at ``sample_rate`` (any ``T``; right-padded to a hop multiple) -> codes.

        ``n_quantizers`` keeps the first N codebooks (all by default); ``padded=False`` is the
        unpadded mode used for chunked inference.
        """
        self._check_audio(audio)
        x = self.preprocess(audio.astype(jnp.float32)).transpose(0, 2, 1)
        q = self.quantizer(self.encoder(x, padded), n_quantizers)
        return EncodeOutput(
            z=q.z.transpose(0, 2, 1),
            codes=q.codes.astype(jnp.int32),
            latents=q.latents.transpose(0, 2, 1),
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
        )

    @nnx.jit(static_argnames=("padded",))
    def decode(self, z: jax.Array, padded: bool = True) -> jax.Array:
        """Quantised latent ``[B, D, F]`` -> audio ``[B, 1, T]`` (``T = hop * F``, 8 samples fewer for the
        2,4,5,8 stride family, as the original's decoder)."""
        if z.ndim != 3 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be [batch, {self.latent_dim}, frames], got shape {tuple(z.shape)}")
        return self.decoder(z.transpose(0, 2, 1), padded).transpose(0, 2, 1)

    @nnx.jit
    def decode_codes(self, codes: jax.Array) -> jax.Array:
        """Codes ``[B, N, F]`` -> audio ``[B, 1, T]`` in one compiled call."""
        return self.decode(self.quantizer.from_codes(codes).z)

    def __call__(
        self,
        audio: jax.Array,
        n_quantizers: int | None = None,
        *,
        train: bool = False,
        key: jax.Array | None = None,
        dtype=None,
    ) -> ForwardOutput:
        """Encode and decode ``audio [B, 1, T]`` (padded mode), cropping the output to ``T`` samples.

        With ``train=True`` quantiser dropout applies (``key`` draws it). ``dtype`` (e.g. bfloat16) is
        the dtype the encoder and decoder compute in, for a model prepared by
        :func:`jaxdac.nn.precision.cast_for_compute`; the quantiser always runs in float32 and the
        output audio is float32. Not jitted: call it inside your own jitted training step.
        """
        self._check_audio(audio)
        length = audio.shape[-1]
        x = self.preprocess(audio).transpose(0, 2, 1)
        if dtype is not None:
            x = x.astype(dtype)
        z = self.encoder(x).astype(jnp.float32)
        q = self.quantizer(z, n_quantizers, train=train, key=key)
        z_q = q.z if dtype is None else q.z.astype(dtype)
        y = self.decoder(z_q)[:, :length].astype(jnp.float32).transpose(0, 2, 1)
        return ForwardOutput(
            audio=y,
            z=q.z.transpose(0, 2, 1),
            codes=q.codes,
            latents=q.latents.transpose(0, 2, 1),
            commitment_loss=q.commitment_loss,
            codebook_loss=q.codebook_loss,
        )


__all__ = ["DAC", "EncodeOutput", "ForwardOutput", "CodeLookup"]
