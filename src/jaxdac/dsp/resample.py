"""Band-limited resampling between integer rates, numerically equivalent to ``julius.resample_frac``.

The original resamples with julius (Julius O. Smith's windowed-sinc interpolation): with both rates
divided by their gcd to ``old`` and ``new``, output sample ``j`` is input sample ``j * old / new`` read
off the band-limited interpolant of the input,

    y[j] = sum_i x[i] * sinc(pi * f_c * (i / old - j / new)) * window(i / old - j / new),

with cutoff ``f_c = rolloff * min(old, new)`` (samples per reduced second), the sinc truncated after
``zeros`` zero crossings and tapered by a squared cosine. Output phases repeat every ``new`` outputs,
shifted by ``old`` inputs, so there are just ``new`` distinct filters, applied with stride ``old``.

Where julius runs a strided ``conv1d`` with one input and ``new`` output channels, this module folds the
padded input into rows of ``old`` samples (a free reshape) and runs a stride-1 convolution over rows with
``old`` input and ``new`` output channels and ``ceil(kernel_length / old)`` taps (2 for every common pair
of rates). That is matmul-shaped work for XLA, and memory stays proportional to the signal: no frame is
duplicated per tap.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np


@functools.lru_cache(maxsize=None)
def _sinc_filters(old: int, new: int, zeros: int, rolloff: float) -> tuple[np.ndarray, int]:
    """The ``new`` polyphase filters ``[new, 2 * width + old]`` (float32) and the half-width ``width``.

    ``old`` and ``new`` are already reduced by their gcd. Filter ``j`` maps the inputs at offsets
    ``-width .. width + old - 1`` around ``j * old / new`` to output ``j``.

    The arithmetic is float32 in julius's order of operations, on purpose: julius builds its filters in
    float32 from a time axis that loses about 1e-5 rad to rounding, so its taps are up to 1.4e-5 away
    from the exact (float64) ones. Rebuilding them the same way keeps the outputs within float32
    accumulation noise (about 1e-6) of julius's instead of 1e-5.
    """
    f32 = np.float32
    cutoff = min(old, new) * rolloff  # rolloff keeps the transition band below the lower Nyquist
    width = math.ceil(zeros * old / cutoff)  # input samples spanned by `zeros` zero crossings
    offsets = np.arange(-width, width + old, dtype=f32)
    phases = np.array([-j / new for j in range(new)], dtype=f32)[:, None]  # output instants, reduced seconds
    # Distance from each output instant to each input sample, in periods of the cutoff, in radians.
    t = (phases + offsets[None, :] / f32(old)) * f32(cutoff)
    t = np.clip(t, -zeros, zeros) * f32(math.pi)
    window = np.cos(t / f32(zeros) / f32(2)) ** 2  # squared cosine reaching 0 at the last zero crossing
    safe_t = np.where(t == 0, f32(1), t)
    filters = np.where(t == 0, f32(1), np.sin(safe_t) / safe_t) * window
    filters = filters / filters.sum(axis=1, keepdims=True)  # unit DC gain: a constant stays constant
    return filters.astype(f32), width


def resampled_length(length: int, old_sr: int, new_sr: int) -> int:
    """Number of samples :func:`resample` returns for ``length`` input samples (julius's default)."""
    gcd = math.gcd(old_sr, new_sr)
    old, new = old_sr // gcd, new_sr // gcd
    # julius floors the float quotient; reproduce it exactly rather than with integer division.
    return int(math.floor(new * length / old))


@functools.partial(jax.jit, static_argnames=("old_sr", "new_sr", "zeros", "rolloff", "output_length"))
def resample(
    audio: jax.Array,
    old_sr: int,
    new_sr: int,
    zeros: int = 24,
    rolloff: float = 0.945,
    output_length: int | None = None,
) -> jax.Array:
    """Resample ``audio [..., T]`` (public audio is ``[B, C, T]``) from ``old_sr`` to ``new_sr`` Hz.

    Equals ``julius.resample_frac(audio, old_sr, new_sr, zeros, rolloff)``: the output has
    ``floor(new_sr * T / old_sr)`` samples unless ``output_length`` (at most ``ceil(new_sr * T / old_sr)``)
    asks for another count. The signal is extended by repeating its edge samples, as julius does.
    Rates are Python ints; after dividing by their gcd both should be small (44100 -> 48000 is
    147 -> 160), since the filter bank has ``new`` rows of about ``2 * zeros * old / new + old`` taps.
    """
    if not isinstance(old_sr, int) or not isinstance(new_sr, int):
        raise TypeError("sample rates must be Python ints")
    audio = jnp.asarray(audio)
    if not jnp.issubdtype(audio.dtype, jnp.floating):
        audio = audio.astype(jnp.float32)
    if old_sr == new_sr:
        return audio
    gcd = math.gcd(old_sr, new_sr)
    old, new = old_sr // gcd, new_sr // gcd
    filters, width = _sinc_filters(old, new, zeros, float(rolloff))
    taps = filters.shape[1]

    *lead, n_in = audio.shape
    max_length = math.ceil(new * n_in / old)
    if output_length is None:
        output_length = resampled_length(n_in, old_sr, new_sr)
    elif not 0 <= output_length <= max_length:
        raise ValueError(f"output_length must be between 0 and {max_length}, got {output_length}")

    # Frame f (outputs f * new .. f * new + new - 1) reads padded inputs f * old .. f * old + taps - 1,
    # i.e. rows f .. f + n_rows - 1 of the padded input folded into rows of `old` samples: a stride-1
    # convolution over rows with `old` input and `new` output channels.
    n_frames = n_in // old + 1
    n_rows = -(-taps // old)
    total = (n_frames + n_rows - 1) * old  # > n_in + 2 * width, see below
    x = audio.reshape(-1, n_in)  # [N, T]
    # julius pads `width` copies of the first sample on the left and `width + old` of the last on the
    # right. Past those, the padded rows only meet the zero taps that round the bank up to whole rows,
    # so the right side can simply repeat the last sample up to `total`.
    left = jnp.broadcast_to(x[:, :1], (x.shape[0], width))
    right = jnp.broadcast_to(x[:, -1:], (x.shape[0], total - n_in - width))
    rows = jnp.concatenate([left, x, right], axis=1).reshape(x.shape[0], n_frames + n_rows - 1, old)
    bank = np.zeros((new, n_rows * old), np.float32)
    bank[:, :taps] = filters
    bank = bank.reshape(new, n_rows, old).transpose(1, 2, 0).astype(np.dtype(audio.dtype))  # [n_rows, old, new]
    y = jax.lax.conv_general_dilated(
        rows, bank, window_strides=(1,), padding="VALID", dimension_numbers=("NWC", "WIO", "NWC"),
        precision=jax.lax.Precision.HIGHEST,  # full float32 on accelerators too
    )  # [N, frames, new]
    y = y.reshape(-1, n_frames * new)[:, :output_length]
    return y.reshape(*lead, output_length)
