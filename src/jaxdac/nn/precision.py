"""Mixed precision: run a module's convolutions in a low-precision dtype, keeping float32 parameters.

:func:`cast_for_compute` works on a module built from a parameter state *inside* a traced function (a
jitted step merges the float32 parameters, casts, and calls; inference prepares its chunk parameters the
same way): each weight-normalised convolution's effective kernel ``g v / ||v||`` is computed in float32
from the float32 parameters and only then cast, with its bias and the Snake ``alpha`` parameters, so
gradients flow back to the float32 master parameters through the casts. The quantiser stays float32: its
codebook search must not see bfloat16 rounding (the callers cast activations into and out of it, see
:meth:`jaxdac.nn.codec.DAC.__call__`). The layers compute in the dtype of their kernels.
"""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx

from jaxdac.nn.layers import Snake, fold_weight_norm


def cast_for_compute(module: nnx.Module, dtype=None, *, keep_float32: tuple[str, ...] = ("quantizer",)) -> None:
    """In place: fold weight norm into every kernel and, for a ``dtype`` other than None or float32, cast
    kernels, biases and Snake alphas to it. Top-level submodules named in ``keep_float32`` are folded but
    stay float32. After this the module must not be split back into a trainable parameter state."""
    low = None if dtype is None or jnp.dtype(dtype) == jnp.float32 else jnp.dtype(dtype)
    for name, child in nnx.iter_children(module):
        if not isinstance(child, nnx.Module):
            continue
        kept = str(name) in keep_float32
        fold_weight_norm(child, None if kept else low)
        if low is not None and not kept:
            for _, snake in nnx.iter_graph(child):
                if isinstance(snake, Snake):
                    snake.alpha.set_value(snake.alpha[...].astype(low))
