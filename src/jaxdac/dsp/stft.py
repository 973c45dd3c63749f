"""STFT, inverse STFT and mel spectrograms with audiotools' conventions (``AudioSignal.stft`` and friends).

audiotools 0.7.2 frames audio as follows, and so does this module:

* a periodic Hann window (``scipy.signal.get_window("hann", n)``) of ``window_length`` samples, hop
  ``window_length // 4`` unless given, FFT size equal to the window length, no normalization;
* ``torch.stft(center=True)``: the signal is reflect-padded by ``window_length // 2`` on both sides and
  frame ``f`` covers padded samples ``f * hop .. f * hop + window_length - 1``;
* ``match_stride=True`` (the discriminators' setting, hop must be ``window_length // 4``) first pads
  ``(window_length - hop) // 2`` samples on the left and as many plus ``ceil(T / hop) * hop - T`` on the
  right (with the same padding mode), then drops the first two and last two frames, leaving exactly
  ``ceil(T / hop)`` frames, aligned like the output of a stride-``hop`` convolution;
* mel spectrograms multiply the STFT magnitude by librosa's Slaney mel filterbank (``htk=False``,
  ``norm="slaney"``), built here from its formula.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np


# torch.nn.functional.pad's mode names (audiotools' padding_type) -> jnp.pad's.
_TORCH_PAD_MODES = {"replicate": "edge", "circular": "wrap"}


def _window(kind: str, length: int) -> np.ndarray:
    """Periodic (DFT-even) window, as ``scipy.signal.get_window`` returns by default. ``[length]`` float32."""
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)
    if kind == "hann":
        return hann.astype(np.float32)
    if kind == "sqrt_hann":
        return np.sqrt(hann).astype(np.float32)
    raise ValueError(f"unsupported window {kind!r} (hann or sqrt_hann)")


def _padding(length: int, window_length: int, hop_length: int, match_stride: bool) -> tuple[int, int]:
    """``(left, right)`` padding applied before ``torch.stft``'s own centering, as audiotools computes it."""
    if not match_stride:
        return 0, 0
    if hop_length != window_length // 4:
        raise ValueError("match_stride needs hop_length == window_length // 4")
    # Half of the window's overhang on each side, plus enough on the right to fill the last hop.
    pad = (window_length - hop_length) // 2
    return pad, pad + math.ceil(length / hop_length) * hop_length - length


def _frames(padded: jax.Array, window_length: int, hop_length: int, n_frames: int) -> jax.Array:
    """``[..., L] -> [..., n_frames, window_length]`` with frame ``f`` starting at ``f * hop_length``.

    Built from hop-sized rows of the signal (a reshape) concatenated ``ceil(window / hop)`` at a time,
    so no gather is needed.
    """
    per_frame = -(-window_length // hop_length)
    n_rows = n_frames + per_frame - 1
    need = n_rows * hop_length
    padded = jnp.pad(padded[..., :need], [(0, 0)] * (padded.ndim - 1) + [(0, max(0, need - padded.shape[-1]))])
    rows = padded.reshape(*padded.shape[:-1], n_rows, hop_length)
    frames = jnp.concatenate([rows[..., k : k + n_frames, :] for k in range(per_frame)], axis=-1)
    return frames[..., :window_length]


@functools.partial(
    jax.jit, static_argnames=("window_length", "hop_length", "window", "match_stride", "padding")
)
def stft(
    audio: jax.Array,
    window_length: int,
    hop_length: int | None = None,
    window: str = "hann",
    match_stride: bool = False,
    padding: str = "reflect",
) -> jax.Array:
    """Complex STFT of ``audio [B, C, T]``: ``[B, C, window_length // 2 + 1, frames]`` (complex64).

    ``frames`` is ``1 + (T + 2 * (window_length // 2) - window_length) // hop`` without ``match_stride``
    and ``ceil(T / hop)`` with it. ``padding`` is the mode of the ``match_stride`` padding (audiotools'
    ``padding_type``: "reflect", "constant", "replicate", "circular"); the centering padding is always
    reflect, as in ``torch.stft``.

    Computed in float32; float64 audio stays float64 (complex128 out) when ``jax_enable_x64`` is on,
    which the losses' finite-difference gradient checks use.
    """
    hop_length = window_length // 4 if hop_length is None else hop_length
    audio = jnp.asarray(audio)
    audio = audio.astype(jnp.float64 if audio.dtype == jnp.float64 else jnp.float32)
    length = audio.shape[-1]
    left, right = _padding(length, window_length, hop_length, match_stride)
    no_pad = [(0, 0)] * (audio.ndim - 1)
    mode = _TORCH_PAD_MODES.get(padding, padding)
    x = jnp.pad(audio, no_pad + [(left, right)], mode=mode) if left or right else audio
    half = window_length // 2
    x = jnp.pad(x, no_pad + [(half, half)], mode="reflect")  # torch.stft(center=True)
    n_frames = 1 + (x.shape[-1] - window_length) // hop_length
    frames = _frames(x, window_length, hop_length, n_frames) * _window(window, window_length)  # [B, C, F, W]
    spec = jnp.swapaxes(jnp.fft.rfft(frames, axis=-1), -1, -2)  # [B, C, bins, frames]
    if match_stride:
        # The first and last two frames only exist because of the padding; what remains is
        # ceil(T / hop) frames, one per hop of the original signal.
        spec = spec[..., 2:-2]
    return spec


@functools.partial(jax.jit, static_argnames=("window_length", "hop_length", "window", "match_stride", "length"))
def istft(
    spec: jax.Array,
    window_length: int,
    hop_length: int | None = None,
    window: str = "hann",
    match_stride: bool = False,
    length: int | None = None,
) -> jax.Array:
    """Inverse of :func:`stft`: ``[B, C, bins, frames] -> [B, C, length]`` by windowed overlap-add.

    ``length`` defaults to ``hop * (frames - 1)`` without ``match_stride`` (``torch.istft``'s default)
    and to ``hop * frames`` with it; pass the original length to get the signal back exactly.

    Each sample is divided by the summed squared windows of the frames that cover it. With
    ``match_stride`` that sum leaves out the four frames :func:`stft` dropped, so the samples near the
    ends are reconstructed too; audiotools' ``istft`` zero-fills those frames but still divides by the
    full sum, and so attenuates up to ``3 * window_length / 8`` samples at each end.
    """
    hop_length = window_length // 4 if hop_length is None else hop_length
    n_frames = spec.shape[-1]
    dropped = 2 if match_stride else 0  # frames stft() dropped at each end
    if length is None:
        length = hop_length * (n_frames if match_stride else n_frames - 1)
    left, _ = _padding(length, window_length, hop_length, match_stride)
    start = window_length // 2 + left  # where the signal begins in the padded, framed axis
    win = _window(window, window_length)

    frames = jnp.fft.irfft(jnp.swapaxes(spec, -1, -2), n=window_length, axis=-1) * win  # [B, C, F, W]
    # Overlap-add: split each frame into hop-sized pieces; piece k of frame f lands on row f + k.
    per_frame = -(-window_length // hop_length)
    frames = jnp.pad(frames, [(0, 0)] * (frames.ndim - 1) + [(0, per_frame * hop_length - window_length)])
    pieces = frames.reshape(*frames.shape[:-1], per_frame, hop_length)  # [B, C, F, per_frame, hop]
    n_rows = n_frames + per_frame - 1
    rows = sum(
        jnp.pad(pieces[..., k, :], [(0, 0)] * (pieces.ndim - 3) + [(k, per_frame - 1 - k), (0, 0)])
        for k in range(per_frame)
    )  # [B, C, n_rows, hop]
    signal = rows.reshape(*rows.shape[:-2], n_rows * hop_length)

    # The same overlap-add of the squared window, for the frames present, computed once in numpy.
    squared = np.zeros(per_frame * hop_length)
    squared[:window_length] = win.astype(np.float64) ** 2
    envelope = np.zeros((n_rows, hop_length))
    for k, piece in enumerate(squared.reshape(per_frame, hop_length)):
        envelope[k : k + n_frames] += piece
    envelope = envelope.reshape(-1)
    offset = start - dropped * hop_length  # signal position in this (frames-present) axis
    if offset < 0 or offset + length > envelope.shape[0]:
        raise ValueError(f"length {length} does not fit {n_frames} frames of hop {hop_length}")
    envelope = envelope[offset : offset + length]
    safe = np.where(envelope > 1e-11, envelope, 1.0)
    inverse = np.where(envelope > 1e-11, 1.0 / safe, 0.0).astype(np.float32)
    return signal[..., offset : offset + length] * inverse


def _hz_to_mel(freq: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz (3 mels per 200 Hz), logarithmic above (27 mels per 6.4x)."""
    freq = np.asarray(freq, np.float64)
    linear = freq / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(freq, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(freq >= 1000.0, log_part, linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_hz_to_mel`."""
    mel = np.asarray(mel, np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> np.ndarray:
    """Slaney-style mel filterbank ``[n_mels, n_fft // 2 + 1]`` (float32), as
    ``librosa.filters.mel(sr=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)`` builds it
    (``htk=False``, ``norm="slaney"``), which is what audiotools' ``get_mel_filters`` returns.
    """
    fmax = sample_rate / 2.0 if fmax is None else fmax
    bins = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)  # FFT bin centre frequencies, Hz
    # n_mels + 2 edges equally spaced in mels; filter i rises from edge i to i + 1 and falls to i + 2.
    edges = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges)  # [n_mels + 1]
    distance = edges[:, None] - bins[None, :]  # [n_mels + 2, bins]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    # Slaney normalization: each triangle has unit area per Hz (2 / base width in Hz).
    return (triangles * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


@functools.partial(
    jax.jit,
    static_argnames=(
        "sample_rate", "window_length", "hop_length", "n_mels", "fmin", "fmax", "window", "match_stride", "padding",
    ),
)
def mel_spectrogram(
    audio: jax.Array,
    sample_rate: int,
    window_length: int,
    hop_length: int | None = None,
    n_mels: int = 80,
    fmin: float = 0.0,
    fmax: float | None = None,
    window: str = "hann",
    match_stride: bool = False,
    padding: str = "reflect",
) -> jax.Array:
    """Mel spectrogram of ``audio [B, C, T]``: ``[B, C, n_mels, frames]``, the STFT magnitude (not power)
    through :func:`mel_filterbank`, like ``AudioSignal.mel_spectrogram(n_mels, fmin, fmax, ...)``."""
    magnitude = jnp.abs(stft(audio, window_length, hop_length, window, match_stride, padding))  # [B, C, bins, F]
    bank = mel_filterbank(sample_rate, window_length, n_mels, fmin, fmax)  # [n_mels, bins]
    return jnp.einsum("mk,bckf->bcmf", bank, magnitude, precision=jax.lax.Precision.HIGHEST)
