"""Between the original's PyTorch state dict and the Flax model: a name table plus transposes.

Parameter paths of :class:`jaxdac.nn.DAC` and :class:`jaxdac.nn.discriminator.Discriminator` are the
original's state-dict keys (``encoder.block.0.weight_v`` is ``model.encoder.block[0].weight_v``,
``discriminators.0.convs.0.0.weight_v`` is ``discriminators[0].convs[0][0].weight_v``), so the table maps
every key to itself and records, per layer type, how the array is laid out on each side. Conversion is
auditable: every source key is consumed, every shape is checked, and unknown or missing keys are errors
that name the key.

Our own format for converted weights is a ``.safetensors`` file (no pickle) holding the parameters in
jaxdac's layout and the model config as JSON in its metadata.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Callable, Mapping

import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdac.config import DACConfig, DiscriminatorConfig
from jaxdac.io.atomic import atomic_output
from jaxdac.nn.codec import DAC
from jaxdac.nn.discriminator import Discriminator
from jaxdac.nn.layers import Snake, WNConv1d, WNConv2d, WNConvTranspose1d
from jaxdac.nn.quantize import Codebook

FORMAT = "jaxdac-weights"
FORMAT_VERSION = "1"


class ConversionError(ValueError):
    """A state dict that does not fit the model: unknown, missing or misshapen keys."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One parameter: its path in the Flax model and the two layouts."""

    path: tuple
    torch_shape: tuple[int, ...]
    to_jax: Callable[[np.ndarray], np.ndarray]
    to_torch: Callable[[np.ndarray], np.ndarray]


# Per layer type and parameter: (PyTorch -> jaxdac, jaxdac -> PyTorch) array maps.
_LAYOUTS: dict[type, dict[str, tuple[Callable, Callable]]] = {
    # Conv1d weight [out, in / groups, k] <-> [k, in / groups, out]; weight_g [out, 1, 1] <-> [out].
    WNConv1d: {
        "weight_v": (lambda a: a.transpose(2, 1, 0), lambda a: a.transpose(2, 1, 0)),
        "weight_g": (lambda a: a.reshape(-1), lambda a: a.reshape(-1, 1, 1)),
        "bias": (lambda a: a, lambda a: a),
    },
    # ConvTranspose1d weight [in, out, k] <-> [k, in, out]; weight_g [in, 1, 1] <-> [in].
    WNConvTranspose1d: {
        "weight_v": (lambda a: a.transpose(2, 0, 1), lambda a: a.transpose(1, 2, 0)),
        "weight_g": (lambda a: a.reshape(-1), lambda a: a.reshape(-1, 1, 1)),
        "bias": (lambda a: a, lambda a: a),
    },
    # Conv2d weight [out, in, kh, kw] <-> [kh, kw, in, out]; weight_g [out, 1, 1, 1] <-> [out].
    WNConv2d: {
        "weight_v": (lambda a: a.transpose(2, 3, 1, 0), lambda a: a.transpose(3, 2, 0, 1)),
        "weight_g": (lambda a: a.reshape(-1), lambda a: a.reshape(-1, 1, 1, 1)),
        "bias": (lambda a: a, lambda a: a),
    },
    # Snake alpha [1, C, 1] <-> [C].
    Snake: {"alpha": (lambda a: a.reshape(-1), lambda a: a.reshape(1, -1, 1))},
    # Embedding weight [K, d] on both sides.
    Codebook: {"weight": (lambda a: a, lambda a: a)},
}


def abstract_model(config: DACConfig) -> DAC:
    """The model with shapes but no values (nothing allocated)."""
    return nnx.eval_shape(lambda: DAC(config, rngs=nnx.Rngs(0)))


def abstract_discriminator(config: DiscriminatorConfig) -> Discriminator:
    """The discriminator with shapes but no values (nothing allocated)."""
    return nnx.eval_shape(lambda: Discriminator(config, rngs=nnx.Rngs(0)))


def name_table(model: DAC | Discriminator) -> dict[str, Entry]:
    """Original state-dict key -> :class:`Entry`, for every parameter of ``model``."""
    table: dict[str, Entry] = {}
    for path, module in nnx.iter_modules(model):
        layouts = _LAYOUTS.get(type(module))
        if layouts is None:
            continue
        for name, (to_jax, to_torch) in layouts.items():
            value = getattr(module, name)
            shape = tuple(value.shape)
            torch_shape = to_torch(np.empty(shape, np.float32)).shape if shape else ()
            key = ".".join(str(p) for p in (*path, name))
            table[key] = Entry(path=(*path, name), torch_shape=tuple(torch_shape), to_jax=to_jax, to_torch=to_torch)
    n_params = len(nnx.to_flat_state(nnx.state(model, nnx.Param)))
    assert len(table) == n_params, f"name table covers {len(table)} of {n_params} parameters"
    return table


def _fill(model, values: Mapping[tuple, np.ndarray]):
    graphdef, state = nnx.split(model)
    flat = nnx.to_flat_state(state)
    leaves = []
    for path, variable in flat:
        if path not in values:
            raise ConversionError(f"no value for parameter {'.'.join(map(str, path))}")
        leaves.append(variable.replace(jnp.asarray(values[path])))
    return nnx.merge(graphdef, nnx.from_flat_state([(p, v) for (p, _), v in zip(flat, leaves)]))


def from_state_dict(config: DACConfig, state_dict: Mapping[str, np.ndarray]) -> DAC:
    """Build a model from an original state dict (``weight_g``/``weight_v`` names).

    Every key must be consumed and every shape must match; otherwise :class:`ConversionError`.
    """
    return _from_state_dict(abstract_model(config), state_dict)


def discriminator_from_state_dict(config: DiscriminatorConfig, state_dict: Mapping[str, np.ndarray]) -> Discriminator:
    """Build a discriminator from an original state dict (``weight_g``/``weight_v`` names), as
    :func:`from_state_dict` does for the generator."""
    return _from_state_dict(abstract_discriminator(config), state_dict)


def _from_state_dict(model, state_dict: Mapping[str, np.ndarray]):
    table = name_table(model)
    unknown = sorted(set(state_dict) - set(table))
    if unknown:
        more = f" (and {len(unknown) - 5} more)" if len(unknown) > 5 else ""
        raise ConversionError(f"unknown checkpoint key {', '.join(unknown[:5])}{more} for this model config")
    missing = sorted(set(table) - set(state_dict))
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ConversionError(f"checkpoint is missing key {', '.join(missing[:5])}{more}")
    values = {}
    for key, entry in table.items():
        array = np.asarray(state_dict[key])
        if tuple(array.shape) != entry.torch_shape:
            raise ConversionError(
                f"checkpoint key {key} has shape {tuple(array.shape)}, the model expects {entry.torch_shape}"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise ConversionError(f"checkpoint key {key} has dtype {array.dtype}, expected floating point")
        values[entry.path] = np.ascontiguousarray(entry.to_jax(array)).astype(np.float32)
    return _fill(model, values)


def to_state_dict(model: DAC | Discriminator) -> dict[str, np.ndarray]:
    """The model's parameters as an original state dict (PyTorch layouts, ``weight_g``/``weight_v``)."""
    out = {}
    for key, entry in name_table(model).items():
        value = model
        for part in entry.path:
            value = value[part] if isinstance(part, int) else getattr(value, part)
        out[key] = np.ascontiguousarray(entry.to_torch(np.asarray(value[...])))
    return out


def discriminator_to_state_dict(model: Discriminator) -> dict[str, np.ndarray]:
    """The discriminator's parameters as the original's state dict (``Discriminator.state_dict()``)."""
    if not isinstance(model, Discriminator):
        raise TypeError(f"expected a jaxdac Discriminator, got {type(model).__name__}")
    return to_state_dict(model)


def torch_shapes(config: DACConfig) -> dict[str, tuple[int, ...]]:
    """Expected original state-dict keys and shapes for ``config``, without building the model."""
    return {key: entry.torch_shape for key, entry in name_table(abstract_model(config)).items()}


def discriminator_torch_shapes(config: DiscriminatorConfig) -> dict[str, tuple[int, ...]]:
    """Expected original state-dict keys and shapes of the discriminator, without building it."""
    return {key: entry.torch_shape for key, entry in name_table(abstract_discriminator(config)).items()}


# --- our format -------------------------------------------------------------------------------------
def save(model: DAC, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``model`` as ``.safetensors`` (jaxdac layout, config in the metadata), atomically."""
    from safetensors.numpy import save as st_save

    path = Path(path)
    tensors = {}
    for p, variable in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        tensors[".".join(map(str, p))] = np.ascontiguousarray(np.asarray(variable[...]))
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": json.dumps(model.config.to_kwargs())}
    blob = st_save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=overwrite) as f:
        f.write(blob)
    return path


def is_converted(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks like a safetensors file (8-byte header length, then a JSON object)."""
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def load(path: str | os.PathLike) -> DAC:
    """Read a file written by :func:`save`."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as st_load

    path = Path(path)
    data = path.read_bytes()
    try:
        tensors = st_load(data)
        header_len = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + header_len]).get("__metadata__", {})
    except (SafetensorError, ValueError) as e:
        raise ConversionError(f"{path}: not a readable safetensors file ({e})") from None
    if metadata.get("format") != FORMAT:
        raise ConversionError(f"{path}: a safetensors file, but not jaxdac weights (no '{FORMAT}' metadata)")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise ConversionError(f"{path}: jaxdac weights format {metadata.get('format_version')}, expected {FORMAT_VERSION}")
    config = DACConfig.from_kwargs(json.loads(metadata["config"]))
    model = abstract_model(config)
    expected = {".".join(map(str, p)): (p, tuple(v.shape)) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
    unknown = sorted(set(tensors) - set(expected))
    missing = sorted(set(expected) - set(tensors))
    if unknown or missing:
        raise ConversionError(f"{path}: unknown keys {unknown[:5]}, missing keys {missing[:5]}")
    values = {}
    for key, (p, shape) in expected.items():
        if tensors[key].shape != shape:
            raise ConversionError(f"{path}: {key} has shape {tensors[key].shape}, expected {shape}")
        values[p] = tensors[key]
    return _fill(model, values)
