"""Geometry of the DAC convolution stack: integer maths only.

Each convolution's kernel, stride, dilation and padding is declared once here, as a :class:`Conv`
spec; the Flax modules in :mod:`jaxdac.nn.codec` are built from these same specs, and
``tests/test_geometry.py`` checks the lengths below against the real module stack with
``jax.eval_shape``. Hop length, delay, output lengths and chunk plans are pure functions of a
:class:`~jaxdac.config.DACConfig`.

Length arithmetic of one layer on ``L`` input samples (``p`` = padding, 0 in unpadded chunk mode)::

    Conv1d           L' = floor((L + 2p - d(k-1) - 1) / s) + 1
    ConvTranspose1d  L' = (L - 1) s - 2p + d(k-1) + 1
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

from jaxdac.config import DACConfig

# Dilations of the three residual units in every encoder and decoder block.
RESIDUAL_DILATIONS = (1, 3, 9)


@dataclasses.dataclass(frozen=True)
class Conv:
    """One convolution of the stack, in PyTorch's terms."""

    kernel: int
    stride: int = 1
    dilation: int = 1
    padding: int = 0
    transpose: bool = False

    def output_length(self, length: int, padded: bool = True) -> int:
        p = self.padding if padded else 0
        span = self.dilation * (self.kernel - 1)
        if self.transpose:
            return (length - 1) * self.stride - 2 * p + span + 1
        return (length + 2 * p - span - 1) // self.stride + 1

    def output_start(self, start: int) -> int:
        """Where a signal that begins at input position ``start`` begins in the padded layer's output:
        a strided convolution's output ``t`` starts reading at ``s t - p`` (``start`` a multiple of ``s``),
        a transposed one puts input ``i`` at output ``s i`` once its ``p`` cropped samples are gone.
        Integer maths that also runs on traced integer arrays (see ``nn.codec``)."""
        return start * self.stride if self.transpose else start // self.stride

    def input_length(self, length: int) -> int:
        """Smallest unpadded input length giving at least ``length`` outputs (the original's
        ``get_delay`` walks the stack backwards with this)."""
        span = self.dilation * (self.kernel - 1)
        if self.transpose:
            return -(-(length - span - 1) // self.stride) + 1  # ceil division
        return (length - 1) * self.stride + span + 1


# The layer specs. Each block's constructor in nn/codec.py asks for its convolutions here.
def stem_conv() -> Conv:
    """First encoder convolution and first decoder convolution: kernel 7, 'same' padding."""
    return Conv(kernel=7, padding=3)


def residual_conv(dilation: int) -> Conv:
    """The dilated kernel-7 convolution of a residual unit ('same' padding: 3 * dilation)."""
    return Conv(kernel=7, dilation=dilation, padding=3 * dilation)


def pointwise_conv() -> Conv:
    """Kernel-1 convolutions: the second conv of a residual unit, quantizer projections."""
    return Conv(kernel=1)


def downsample_conv(stride: int) -> Conv:
    """Strided convolution closing an encoder block: kernel 2*stride, padding ceil(stride/2)."""
    return Conv(kernel=2 * stride, stride=stride, padding=math.ceil(stride / 2))


def upsample_conv(stride: int) -> Conv:
    """Transposed convolution opening a decoder block. For odd strides it yields ``stride * L - 1``
    samples, so the 24 and 16 kHz decoders come out short of ``hop * frames`` (see
    :func:`decoded_length`)."""
    return Conv(kernel=2 * stride, stride=stride, padding=math.ceil(stride / 2), transpose=True)


def encoder_head_conv() -> Conv:
    """Last encoder convolution, to the latent dimension."""
    return Conv(kernel=3, padding=1)


def decoder_head_conv() -> Conv:
    """Last decoder convolution, to one audio channel."""
    return Conv(kernel=7, padding=3)


def _residual_unit(dilation: int) -> list[Conv]:
    return [residual_conv(dilation), pointwise_conv()]


def encoder_convs(config: DACConfig) -> list[Conv]:
    """The encoder's convolutions in forward order."""
    convs = [stem_conv()]
    for stride in config.encoder_rates:
        for d in RESIDUAL_DILATIONS:
            convs += _residual_unit(d)
        convs.append(downsample_conv(stride))
    convs.append(encoder_head_conv())
    return convs


def decoder_convs(config: DACConfig) -> list[Conv]:
    """The decoder's convolutions in forward order."""
    convs = [stem_conv()]
    for stride in config.decoder_rates:
        convs.append(upsample_conv(stride))
        for d in RESIDUAL_DILATIONS:
            convs += _residual_unit(d)
    convs.append(decoder_head_conv())
    return convs


def _run(convs: list[Conv], length: int, padded: bool) -> int:
    for conv in convs:
        length = conv.output_length(length, padded)
    return length


def hop_length(config: DACConfig) -> int:
    return config.hop_length


def padded_input_length(config: DACConfig, n_samples: int) -> int:
    """``encode`` right-pads its input to a multiple of the hop (the original's ``preprocess``)."""
    return -(-n_samples // config.hop_length) * config.hop_length


def encoded_length(config: DACConfig, n_samples: int, padded: bool = True) -> int:
    """Code frames for ``n_samples`` input samples, after padding to a multiple of the hop."""
    return _run(encoder_convs(config), padded_input_length(config, n_samples), padded)


def decoded_length(config: DACConfig, n_frames: int, padded: bool = True) -> int:
    """Audio samples the decoder produces from ``n_frames`` latent frames. Padded, this is
    ``hop * n_frames`` for the 44.1 kHz stride family and ``hop * n_frames - 8`` for 2,4,5,8."""
    return _run(decoder_convs(config), n_frames, padded)


def model_output_length(config: DACConfig, n_samples: int) -> int:
    """Unpadded encoder-then-decoder output length for ``n_samples`` input samples: the original's
    ``get_output_length``, which sets the hop of its chunked compression."""
    return _run(encoder_convs(config) + decoder_convs(config), n_samples, padded=False)


def delay(config: DACConfig) -> int:
    """Samples of context the unpadded stack consumes on each side: the original's ``get_delay``.

    Walks the stack backwards from the output length of an empty input to the input length that
    produces it; half the difference is the delay (7904 samples for the 44.1 kHz model).
    """
    convs = encoder_convs(config) + decoder_convs(config)
    out = _run(convs, 0, padded=False)
    length = out
    for conv in reversed(convs):
        length = conv.input_length(length)
    return (length - out) // 2


def chunk_plan(config: DACConfig, n_samples: int, win_duration: float) -> tuple[int, int]:
    """Window and hop, in samples, of the original's chunked compression for ``win_duration`` seconds:
    the window is rounded up to a multiple of the hop length, and the chunk hop is the model's
    unpadded output length for one window."""
    window = int(win_duration * config.sample_rate)
    window = -(-window // config.hop_length) * config.hop_length
    return window, model_output_length(config, window)


# --- receptive fields, for seamless chunking ----------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Dependency:
    """Output position ``t`` of a stack depends only on input positions in ``[scale t + lo, scale t + hi]``
    (exact rationals; padded convolutions, whose zero padding lies outside the input)."""

    scale: Fraction
    lo: Fraction
    hi: Fraction


def dependency(convs: list[Conv]) -> Dependency:
    """Compose the input range each output position reads, from the last layer back to the first.

    Conv1d: output ``t`` reads inputs ``s t - p`` .. ``s t - p + d(k-1)``. ConvTranspose1d: output ``t``
    receives input ``i`` when ``t = s i - p + m d`` for a tap ``m``, so ``i`` lies in
    ``[(t + p - d(k-1)) / s, (t + p) / s]``. Residual skips read the centre of their conv's range and
    add nothing.
    """
    scale, lo, hi = Fraction(1), Fraction(0), Fraction(0)
    for conv in reversed(convs):
        span = conv.dilation * (conv.kernel - 1)
        if conv.transpose:
            a, l, h = Fraction(1, conv.stride), Fraction(conv.padding - span, conv.stride), Fraction(conv.padding, conv.stride)
        else:
            a, l, h = Fraction(conv.stride), Fraction(-conv.padding), Fraction(span - conv.padding)
        scale, lo, hi = a * scale, a * lo + l, a * hi + h
    return Dependency(scale, lo, hi)


@dataclasses.dataclass(frozen=True)
class Context:
    """Frames of context a chunk needs on each side so that its centre equals whole-signal processing."""

    left: int
    right: int


def encoder_context(config: DACConfig) -> Context:
    """Code frame ``f`` reads input samples ``[f hop + lo, f hop + hi]``: in whole frames, how far that
    reaches before frame ``f``'s own first sample and after its last."""
    dep = dependency(encoder_convs(config))
    assert dep.scale == config.hop_length
    hop = config.hop_length
    return Context(left=math.ceil(-dep.lo / hop), right=math.ceil((dep.hi - (hop - 1)) / hop))


def decoder_context(config: DACConfig) -> Context:
    """Output samples of frame ``f`` (``f hop .. f hop + hop - 1``) read latent frames
    ``[f + lo', f + hi']``: the frames needed beyond ``f`` itself on each side."""
    dep = dependency(decoder_convs(config))
    hop = config.hop_length
    assert dep.scale == Fraction(1, hop)
    return Context(left=math.ceil(-dep.lo), right=math.ceil(dep.hi + Fraction(hop - 1, hop)))


@dataclasses.dataclass(frozen=True)
class Segment:
    """One step of a seamless plan: process input frames ``[start, start + length)`` and keep the
    result for frames ``[keep_start, keep_stop)``."""

    start: int
    keep_start: int
    keep_stop: int


def seamless_plan(total: int, window: int, context: Context) -> tuple[int, list[Segment]]:
    """Cover ``total`` frames with segments of one fixed length (one compiled shape).

    Each segment is ``window`` kept frames plus ``context`` on each side; segments at the ends of the
    signal slide inwards instead of shrinking, where the signal edge itself supplies the context (the
    padded convolutions then see exactly what whole-signal processing sees). Returns the segment length
    and the segments; with ``total`` no longer than one segment, a single segment covers everything.
    """
    if window < 1:
        raise ValueError(f"window must be at least one frame, got {window}")
    length = context.left + window + context.right
    if total <= length:
        return total, [Segment(0, 0, total)]
    segments = []
    for keep_start in range(0, total, window):
        keep_stop = min(keep_start + window, total)
        start = min(max(0, keep_start - context.left), total - length)
        segments.append(Segment(start, keep_start, keep_stop))
    return length, segments


def packing_gap(config: DACConfig, decoder: bool = False) -> int:
    """Frames of zeros between two signals packed side by side in one row (``pieces`` of ``nn.codec``).

    Each padded layer reads at most its padding beyond a signal's ends, where the mask puts zeros; a
    neighbour must therefore stay that far away at every layer. The receptive field of the stack is
    the sum of those reaches, so the larger side of its context (:func:`encoder_context`, or
    :func:`decoder_context` for ``decoder``) is always far enough.
    """
    context = decoder_context(config) if decoder else encoder_context(config)
    return max(context.left, context.right)


# --- streaming: every layer on blocks of its input ----------------------------------------------------
def stream_step(conv: Conv, lag: int) -> tuple[int, int]:
    """How a padded convolution runs on a stream of fixed-size blocks: ``(output lag, kept inputs)``.

    The stream's block ``i`` of ``n`` input positions covers positions ``[i n - lag, (i + 1) n - lag)``
    of the layer's input (positions below 0 are the zero padding). Its outputs are computed as soon as
    every input they read has arrived: block ``i`` of the output covers ``[i n' - lag', (i + 1) n' - lag')``
    with ``n' = n / s`` (``n s`` for a transposed convolution) and

    * Conv1d: output ``j`` reads inputs ``s j - p .. s j - p + d (k - 1)``, so the newest output a block
      completes is the one whose window ends in it: ``lag' = floor((lag + d (k - 1) - p) / s)``, the
      smallest lag possible. The layer keeps the ``s lag' + p - lag`` inputs before the block that its
      first output reads (between ``d (k - 1) - s + 1`` and ``d (k - 1)``).
    * ConvTranspose1d (kernel ``m s``): input ``i`` adds to outputs ``s i - p .. s i - p + m s - 1``, and
      output block ``s i - p .. s i - p + s - 1`` is complete once input ``i`` has arrived:
      ``lag' = s lag + p``, keeping the ``m - 1`` inputs before the block.

    So each output position is computed once, from one block and what the layer kept, and the stack's
    lag is the sum of what each layer must wait for (its own right context, rounded down to its
    stride): for the released models 8 frames for the encoder (:func:`encoder_context`'s right side) and
    4757 samples for the decoder.
    """
    span = conv.dilation * (conv.kernel - 1)
    if conv.transpose:
        if conv.dilation != 1 or conv.kernel % conv.stride:
            raise ValueError(f"streaming needs a transposed convolution whose kernel is a multiple of its stride: {conv}")
        return conv.stride * lag + conv.padding, conv.kernel // conv.stride - 1
    out = (lag + span - conv.padding) // conv.stride
    return out, out * conv.stride + conv.padding - lag


def stream_lag(convs: list[Conv]) -> int:
    """The lag of a stack run as a stream (:func:`stream_step`), in its output's positions. Residual
    skips add nothing: they are delayed to meet their branch."""
    lag = 0
    for conv in convs:
        lag = stream_step(conv, lag)[0]
    return lag
