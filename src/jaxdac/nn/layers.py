"""Snake activation and weight-normalised 1-d convolutions, channels-last ``[B, T, C]``.

Parameter names follow the original checkpoint (``weight_g``, ``weight_v``, ``bias``, ``alpha``) so
that converting a PyTorch state dict is a name table plus transposes (see
:mod:`jaxdac.weights.convert`). Layouts differ from PyTorch's:

=====================  =======================  ===================
parameter              PyTorch                  jaxdac
=====================  =======================  ===================
Conv1d ``weight_v``    ``[out, in, k]``         ``[k, in, out]``
Conv1d ``weight_g``    ``[out, 1, 1]``          ``[out]``
ConvT ``weight_v``     ``[in, out, k]``         ``[k, in, out]``
ConvT ``weight_g``     ``[in, 1, 1]``           ``[in]``
Snake ``alpha``        ``[1, C, 1]``            ``[C]``
=====================  =======================  ===================
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from jaxdac.geometry import Conv

_DIMENSIONS = ("NWC", "WIO", "NWC")


def snake(x: jax.Array, alpha: jax.Array) -> jax.Array:
    """Snake: ``x + sin(alpha x)^2 / alpha``, with the original's 1e-9 guard on ``1/alpha``."""
    return x + jnp.reciprocal(alpha + 1e-9) * jnp.square(jnp.sin(alpha * x))


class Snake(nnx.Module):
    def __init__(self, channels: int):
        self.alpha = nnx.Param(jnp.ones((channels,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, C]
        return snake(x, self.alpha[...])


def _weight_norm(v: jax.Array, g: jax.Array, axes: tuple[int, int]) -> jax.Array:
    # w = g * v / ||v||, the norm taken over every axis but the one g indexes.
    norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=True))
    return v * (jnp.expand_dims(g, axes) / norm)


def _is_folded(layer) -> bool:
    # See fold_weight_norm: a folded layer's weight_g holds None and weight_v the effective kernel.
    return layer.weight_g.get_value() is None


def fold_weight_norm(module: nnx.Module, dtype=None) -> None:
    """Inference only: store each weight-normed convolution's effective kernel ``g v / ||v||`` in its
    ``weight_v`` (cast to ``dtype`` with its bias, when given) and None in its ``weight_g``, in place.

    Folded layers use ``weight_v`` as their kernel directly, so a compiled function that receives folded
    parameters does not recompute the weight norm on every call (for the 44.1 kHz model that is a pass
    over 76 M weights per chunk). Folding is exact up to float32 rounding of that same product. A folded
    module cannot be trained or converted back; apply it to a copy (``nnx.merge(*nnx.split(model))``)
    or, as :mod:`jaxdac.inference` does, inside a jitted function that returns the folded state.
    """
    for _, layer in nnx.iter_graph(module):
        if isinstance(layer, (WNConv1d, WNConvTranspose1d)) and not _is_folded(layer):
            kernel = layer.kernel()
            bias = layer.bias[...]
            if dtype is not None:
                kernel, bias = kernel.astype(dtype), bias.astype(dtype)
            layer.weight_v.set_value(kernel)
            layer.weight_g.set_value(None)
            layer.bias.set_value(bias)


def _torch_default_init(key, shape, fan_in):
    # PyTorch's default conv init (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class WNConv1d(nnx.Module):
    """Weight-normalised Conv1d. ``weight_g`` scales each *output* channel."""

    def __init__(self, in_channels: int, out_channels: int, spec: Conv, *, zero_bias: bool = True, rngs: nnx.Rngs):
        assert not spec.transpose
        self.spec = spec
        fan_in = in_channels * spec.kernel
        v = _torch_default_init(rngs.params(), (spec.kernel, in_channels, out_channels), fan_in)
        self.weight_v = nnx.Param(v)  # [k, in, out]
        self.weight_g = nnx.Param(jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1))))  # [out]
        # The original zeroes Conv1d biases at init (``init_weights``).
        bias = jnp.zeros((out_channels,)) if zero_bias else _torch_default_init(rngs.params(), (out_channels,), fan_in)
        self.bias = nnx.Param(bias)

    def kernel(self) -> jax.Array:  # [k, in, out]
        if _is_folded(self):
            return self.weight_v[...]
        return _weight_norm(self.weight_v[...], self.weight_g[...], axes=(0, 1))

    def __call__(self, x: jax.Array, padded: bool = True) -> jax.Array:  # [B, T, in] -> [B, T', out]
        p = self.spec.padding if padded else 0
        y = jax.lax.conv_general_dilated(
            x,
            self.kernel(),
            window_strides=(self.spec.stride,),
            padding=[(p, p)],
            rhs_dilation=(self.spec.dilation,),
            dimension_numbers=_DIMENSIONS,
        )
        return y + self.bias[...]


class WNConvTranspose1d(nnx.Module):
    """Weight-normalised ConvTranspose1d. PyTorch's weight-norm dim 0 is the *input* channel here."""

    def __init__(self, in_channels: int, out_channels: int, spec: Conv, *, rngs: nnx.Rngs):
        assert spec.transpose
        self.spec = spec
        # PyTorch computes fan_in from weight dim 1, which for a transposed conv is out_channels.
        fan_in = out_channels * spec.kernel
        v = _torch_default_init(rngs.params(), (spec.kernel, in_channels, out_channels), fan_in)
        self.weight_v = nnx.Param(v)  # [k, in, out]
        self.weight_g = nnx.Param(jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 2))))  # [in]
        self.bias = nnx.Param(_torch_default_init(rngs.params(), (out_channels,), fan_in))

    def kernel(self) -> jax.Array:  # [k, in, out]
        if _is_folded(self):
            return self.weight_v[...]
        return _weight_norm(self.weight_v[...], self.weight_g[...], axes=(0, 2))

    def __call__(self, x: jax.Array, padded: bool = True) -> jax.Array:  # [B, T, in] -> [B, T', out]
        s, k = self.spec.stride, self.spec.kernel
        if self.spec.dilation == 1 and k % s == 0:
            return self._polyphase(x, padded)
        return self._dilated(x, padded)

    def _polyphase(self, x: jax.Array, padded: bool) -> jax.Array:  # [B, L, in] -> [B, L', out]
        # Input sample i adds x_i W_m to output s i + m - p for each tap m < k. With k = n s that is one
        # matmul, x [B*L, in] @ W [in, k*out], giving k output samples per input sample, then an
        # overlap-add: output block j (s samples) = sum over a < n of tap group a of input j - a.
        # The full overlap-add has (L + n - 1) s = (L - 1) s + k samples; padding crops p on each side.
        # Same maths as the zero-inserted convolution below, without multiplying the inserted zeros
        # (s times fewer FLOPs) and as a plain matmul, which XLA's CPU backend runs fastest.
        s, k = self.spec.stride, self.spec.kernel
        n = k // s
        batch, length, _ = x.shape
        w = self.kernel()
        out = w.shape[-1]
        taps = jnp.einsum("blc,kco->blko", x, w).reshape(batch, length, n, s, out)  # [B, L, n, s, out]
        y = sum(jnp.pad(taps[:, :, a], ((0, 0), (a, n - 1 - a), (0, 0), (0, 0))) for a in range(n))
        y = y.reshape(batch, (length + n - 1) * s, out)
        p = self.spec.padding if padded else 0
        if p:
            y = y[:, p:-p]
        return y + self.bias[...]

    def _dilated(self, x: jax.Array, padded: bool) -> jax.Array:  # [B, L, in] -> [B, L', out]
        # A transposed convolution is a stride-1 convolution of the input dilated by the stride
        # (stride-1 zeros between samples) with the flipped kernel, padded by span - p on each side:
        # output length (L - 1) s + span - 2p + 1, as in PyTorch.
        s, d, k = self.spec.stride, self.spec.dilation, self.spec.kernel
        span = d * (k - 1)
        p = span - (self.spec.padding if padded else 0)
        y = jax.lax.conv_general_dilated(
            x,
            jnp.flip(self.kernel(), axis=0),
            window_strides=(1,),
            padding=[(p, p)],
            lhs_dilation=(s,),
            rhs_dilation=(d,),
            dimension_numbers=_DIMENSIONS,
        )
        return y + self.bias[...]
