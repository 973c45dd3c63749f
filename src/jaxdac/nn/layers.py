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
        return _weight_norm(self.weight_v[...], self.weight_g[...], axes=(0, 2))

    def __call__(self, x: jax.Array, padded: bool = True) -> jax.Array:  # [B, T, in] -> [B, T', out]
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
