"""Snake activation and weight-normalised convolutions, channels-last (``[B, T, C]``, 2-d ``[B, H, W, C]``).

Parameter names follow the original checkpoint (``weight_g``, ``weight_v``, ``bias``, ``alpha``) so
that converting a PyTorch state dict is a name table plus transposes (see
:mod:`jaxdac.weights.convert`). Layouts differ from PyTorch's:

=====================  =======================  ===================
parameter              PyTorch                  jaxdac
=====================  =======================  ===================
Conv1d ``weight_v``    ``[out, in/groups, k]``  ``[k, in/groups, out]``
Conv1d ``weight_g``    ``[out, 1, 1]``          ``[out]``
Conv2d ``weight_v``    ``[out, in, kh, kw]``    ``[kh, kw, in, out]``
Conv2d ``weight_g``    ``[out, 1, 1, 1]``       ``[out]``
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
_DIMENSIONS_2D = ("NHWC", "HWIO", "NHWC")


def snake(x: jax.Array, alpha: jax.Array) -> jax.Array:
    """Snake: ``x + sin(alpha x)^2 / alpha``, with the original's 1e-9 guard on ``1/alpha``."""
    return x + jnp.reciprocal(alpha + 1e-9) * jnp.square(jnp.sin(alpha * x))


class Snake(nnx.Module):
    def __init__(self, channels: int):
        self.alpha = nnx.Param(jnp.ones((channels,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, T, C]
        return snake(x, self.alpha[...])


def _weight_norm(v: jax.Array, g: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    # w = g * v / ||v||, the norm taken over every axis but the one g indexes.
    norm = jnp.sqrt(jnp.sum(jnp.square(v), axis=axes, keepdims=True))
    return v * (jnp.expand_dims(g, axes) / norm)


def _is_folded(layer) -> bool:
    # See fold_weight_norm: a folded layer's weight_g holds None and weight_v the effective kernel.
    return layer.weight_g.get_value() is None


def fold_weight_norm(module: nnx.Module, dtype=None) -> None:
    """Inference only: store each weight-normed convolution's effective kernel ``g v / ||v||`` in its
    ``weight_v`` (cast to ``dtype`` with its bias, when given) and None in its ``weight_g``, in place.
    Transposed convolutions store it in their matmul's layout, ``[in, k, out]``.

    Folded layers use ``weight_v`` as their kernel directly, so a compiled function that receives folded
    parameters does not recompute the weight norm on every call (for the 44.1 kHz model that is a pass
    over 76 M weights per chunk). Folding is exact up to float32 rounding of that same product. A folded
    module cannot be trained or converted back; apply it to a copy (``nnx.clone(model)``: outside a
    transformation ``nnx.merge(*nnx.split(model))`` shares the model's variables and is not one)
    or, as :mod:`jaxdac.inference` does, inside a jitted function that returns the folded state.
    """
    for _, layer in nnx.iter_graph(module):
        if isinstance(layer, (WNConv1d, WNConvTranspose1d, WNConv2d)) and not _is_folded(layer):
            kernel = layer.matmul_kernel() if isinstance(layer, WNConvTranspose1d) else layer.kernel()
            bias = layer.bias[...]
            if dtype is not None:
                kernel, bias = kernel.astype(dtype), bias.astype(dtype)
            layer.weight_v.set_value(kernel)
            layer.weight_g.set_value(None)
            layer.bias.set_value(bias)


def store_out_major(module: nnx.Module, min_channels: int) -> None:
    """After :func:`fold_weight_norm`, in place: store the kernels of ungrouped convolutions with at least
    ``min_channels`` inputs as ``[out, k * in]`` for :meth:`WNConv1d.unfolded`, and of transposed ones
    as ``[k * out, in]`` for their polyphase matmul. A stream's block gives the wide, deep layers a few
    outputs each, so their step is a matrix times a few vectors, bound by reading the weights: XLA's CPU dot reads an out-major matrix about twice as fast there (16-36 GB/s
    against 8-18 GB/s on this 2-core CPU for 59 MB of weights, 1-16 vectors)."""
    for _, layer in nnx.iter_graph(module):
        if not isinstance(layer, (WNConv1d, WNConvTranspose1d)) or not _is_folded(layer) or layer.out_major:
            continue
        if isinstance(layer, WNConv1d) and layer.groups == 1 and layer.weight_v.shape[1] >= min_channels:
            k, n_in, n_out = layer.weight_v.shape
            layer.weight_v.set_value(layer.weight_v[...].reshape(k * n_in, n_out).T)
            layer.out_major = True
        elif isinstance(layer, WNConvTranspose1d) and layer.weight_v.shape[0] >= min_channels:
            n_in = layer.weight_v.shape[0]
            layer.weight_v.set_value(layer.weight_v[...].reshape(n_in, -1).T)  # [in, k, out] -> [k * out, in]
            layer.out_major = True


def _torch_default_init(key, shape, fan_in):
    # PyTorch's default conv init (kaiming_uniform with a=sqrt(5)): U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
    bound = 1.0 / math.sqrt(fan_in)
    return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class WNConv1d(nnx.Module):
    """Weight-normalised Conv1d. ``weight_g`` scales each *output* channel.

    With ``groups`` the input and output channels split into that many groups, each convolved on its own
    (PyTorch's ``groups``): the kernel is ``[k, in / groups, out]``, output channel ``o`` reading group
    ``o // (out / groups)``.
    """

    def __init__(self, in_channels: int, out_channels: int, spec: Conv, *, zero_bias: bool = True, groups: int = 1,
                 rngs: nnx.Rngs):
        assert not spec.transpose
        assert in_channels % groups == 0 and out_channels % groups == 0, (in_channels, out_channels, groups)
        self.spec = spec
        self.groups = groups
        self.out_major = False  # the folded kernel stored as [out, k * in]: see store_out_major
        fan_in = in_channels // groups * spec.kernel
        v = _torch_default_init(rngs.params(), (spec.kernel, in_channels // groups, out_channels), fan_in)
        self.weight_v = nnx.Param(v)  # [k, in / groups, out]
        self.weight_g = nnx.Param(jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1))))  # [out]
        # The original zeroes Conv1d biases at init (``init_weights``).
        bias = jnp.zeros((out_channels,)) if zero_bias else _torch_default_init(rngs.params(), (out_channels,), fan_in)
        self.bias = nnx.Param(bias)

    def kernel(self) -> jax.Array:  # [k, in, out]
        if _is_folded(self):
            v = self.weight_v[...]
            return v.T.reshape(self.spec.kernel, -1, v.shape[0]) if self.out_major else v
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
            feature_group_count=self.groups,
        )
        return y + self.bias[...]

    def unfolded(self, x: jax.Array) -> jax.Array:  # [B, T, in] -> [B, T', out], unpadded
        """The unpadded convolution as one matmul: the ``k`` taps of every output gathered side by side,
        ``[B, T', k * in]``, times the kernel as ``[k * in, out]`` (a free reshape of ``[k, in, out]``) or,
        stored out-major (:func:`store_out_major`), ``[out, k * in]``. For the few outputs of a stream's
        block this reads each weight once, contiguously; XLA's convolution does not (its small-output
        cases run at a third of the memory bandwidth on this CPU). Unrelated to weight-norm folding."""
        if self.groups != 1:
            raise ValueError("unfolded convolutions are for ungrouped layers")
        k, s, d = self.spec.kernel, self.spec.stride, self.spec.dilation
        n_out = (x.shape[1] - d * (k - 1) - 1) // s + 1
        taps = [jax.lax.slice_in_dim(x, t * d, t * d + (n_out - 1) * s + 1, stride=s, axis=1) for t in range(k)]
        cols = jnp.concatenate(taps, axis=-1) if k > 1 else taps[0]  # [B, T', k * in]
        if self.out_major:
            y = jnp.einsum("btc,oc->bot", cols, self.weight_v[...]).transpose(0, 2, 1)
        else:
            kernel = self.kernel()
            y = jnp.einsum("btc,co->bto", cols, kernel.reshape(k * kernel.shape[1], kernel.shape[2]))
        return y + self.bias[...]


def _fold_phases(x: jax.Array, kernel: jax.Array, stride: int, padding: int) -> tuple[jax.Array, jax.Array]:
    """A convolution strided by ``s`` along the last spatial axis, as a stride-1 one over its phases.

    With the input zero-padded by ``padding``, output ``j`` is ``sum_k w[k] x[s j + k]``. Writing the tap
    ``k = s m + r`` and the position ``s i + r`` as (row ``i``, phase ``r``), that is
    ``sum_m sum_r w[s m + r] x[s (j + m) + r]``: a stride-1 convolution with ``ceil(k / s)`` taps over
    ``s * C`` channels (phase-major), the kernel zero-padded to a whole number of phases. Folding the
    phases into channels is a reshape. The padded input is cut (or zero-extended) to exactly the
    ``s * (n_out + taps - 1)`` samples the outputs read. ``x [..., L, C]``, ``kernel [..., k, C, out]``;
    returns both folded, to be convolved with stride 1 and no padding along that axis.
    """
    axis, kernel_axis = x.ndim - 2, kernel.ndim - 3
    k, length = kernel.shape[kernel_axis], x.shape[axis]
    taps = -(-k // stride)
    n_out = (length + 2 * padding - k) // stride + 1
    total = stride * (n_out + taps - 1)
    widths = [(0, 0)] * x.ndim
    widths[axis] = (padding, max(0, total - length - padding))
    x = jax.lax.slice_in_dim(jnp.pad(x, widths), 0, total, axis=axis)
    x = x.reshape(*x.shape[:axis], total // stride, stride * x.shape[-1])
    kernel_widths = [(0, 0)] * kernel.ndim
    kernel_widths[kernel_axis] = (0, taps * stride - k)
    kernel = jnp.pad(kernel, kernel_widths)
    kernel = kernel.reshape(*kernel.shape[:kernel_axis], taps, stride * kernel.shape[-2], kernel.shape[-1])
    return x, kernel


class WNConv2d(nnx.Module):
    """Weight-normalised Conv2d on ``[B, H, W, C]``, the discriminators' layer. ``weight_g`` scales each
    output channel; PyTorch's default init (uniform weights and bias, bound ``1 / sqrt(fan_in)``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel: tuple[int, int], stride: tuple[int, int] = (1, 1),
                 padding: tuple[int, int] = (0, 0), *, rngs: nnx.Rngs):
        self.kernel_size = tuple(kernel)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        fan_in = in_channels * kernel[0] * kernel[1]
        v = _torch_default_init(rngs.params(), (*kernel, in_channels, out_channels), fan_in)
        self.weight_v = nnx.Param(v)  # [kh, kw, in, out]
        self.weight_g = nnx.Param(jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 1, 2))))  # [out]
        self.bias = nnx.Param(_torch_default_init(rngs.params(), (out_channels,), fan_in))

    def kernel(self) -> jax.Array:  # [kh, kw, in, out]
        if _is_folded(self):
            return self.weight_v[...]
        return _weight_norm(self.weight_v[...], self.weight_g[...], axes=(0, 1, 2))

    def __call__(self, x: jax.Array) -> jax.Array:  # [B, H, W, in] -> [B, H', W', out]
        (ph, pw), (sh, sw) = self.padding, self.stride
        kernel = self.kernel()
        if sh == 1 and sw > 1:
            # Strided along W only (the MRD's frequency axis): the same sums as a stride-1 convolution
            # over the sw phases of W, see _fold_phases. Forward cost is alike; the backward pass avoids
            # the input-dilated convolution that XLA's CPU backend runs about 2x slower.
            x, kernel = _fold_phases(x, kernel, sw, pw)
            sw, pw = 1, 0
        y = jax.lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(sh, sw),
            padding=[(ph, ph), (pw, pw)],
            dimension_numbers=_DIMENSIONS_2D,
        )
        return y + self.bias[...]

    def columns(self, x: jax.Array) -> jax.Array:  # [N, H, in] -> [N, H', out]
        """The same layer for a ``(kh, 1)`` kernel, with the width folded into the batch: such a kernel
        never mixes columns, so ``[B, H, W, C]`` is ``B * W`` independent 1-d signals ``[H, C]`` and the
        layer is a 1-d convolution over them (which XLA's CPU backend runs about 1.5x faster)."""
        kh, kw = self.kernel_size
        assert kw == 1 and self.stride[1] == 1 and self.padding[1] == 0, "columns() needs a (kh, 1) kernel"
        ph = self.padding[0]
        y = jax.lax.conv_general_dilated(
            x,
            self.kernel()[:, 0],
            window_strides=(self.stride[0],),
            padding=[(ph, ph)],
            dimension_numbers=_DIMENSIONS,
        )
        return y + self.bias[...]


class WNConvTranspose1d(nnx.Module):
    """Weight-normalised ConvTranspose1d. PyTorch's weight-norm dim 0 is the *input* channel here."""

    def __init__(self, in_channels: int, out_channels: int, spec: Conv, *, rngs: nnx.Rngs):
        assert spec.transpose
        self.spec = spec
        self.out_major = False  # the folded kernel stored as [k * out, in]: see store_out_major
        # PyTorch computes fan_in from weight dim 1, which for a transposed conv is out_channels.
        fan_in = out_channels * spec.kernel
        v = _torch_default_init(rngs.params(), (spec.kernel, in_channels, out_channels), fan_in)
        self.weight_v = nnx.Param(v)  # [k, in, out]
        self.weight_g = nnx.Param(jnp.sqrt(jnp.sum(jnp.square(v), axis=(0, 2))))  # [in]
        self.bias = nnx.Param(_torch_default_init(rngs.params(), (out_channels,), fan_in))

    def kernel(self) -> jax.Array:  # [k, in, out]
        return self.matmul_kernel().transpose(1, 0, 2)

    def matmul_kernel(self) -> jax.Array:  # [in, k, out]
        """The kernel as the polyphase matmul reads it, ``[in, k * out]`` with a free reshape. Folded
        layers store it so (see :func:`fold_weight_norm`): transposing 19 M weights of the 44.1 kHz
        decoder's first upsampler on every call would cost more than a one-frame stream step computes."""
        if not _is_folded(self):
            return _weight_norm(self.weight_v[...], self.weight_g[...], axes=(0, 2)).transpose(1, 0, 2)
        v = self.weight_v[...]
        return v.T.reshape(v.shape[1], self.spec.kernel, -1) if self.out_major else v

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
        if self.out_major:
            out = self.weight_v.shape[0] // k
            taps = jnp.einsum("blc,nc->bnl", x, self.weight_v[...]).transpose(0, 2, 1)
        else:
            w = self.matmul_kernel()
            out = w.shape[-1]
            taps = jnp.einsum("blc,cko->blko", x, w)
        taps = taps.reshape(batch, length, n, s, out)  # [B, L, n, s, out]
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
