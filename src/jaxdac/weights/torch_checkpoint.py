"""Read PyTorch checkpoints (``torch.save`` zip archives) into numpy arrays without importing torch.

Layout of a checkpoint written by ``torch.save`` since PyTorch 1.6 (a plain, uncompressed zip)::

    <archive>/data.pkl         the pickled object (protocol 2), tensors replaced by persistent ids
    <archive>/data/<key>       raw bytes of each storage, in the byte order named by <archive>/byteorder
    <archive>/byteorder        "little" or "big" (absent in files older than PyTorch 2.1: little)
    <archive>/version, .format_version, .storage_alignment, .data/serialization_id

Inside ``data.pkl`` a tensor is ``torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
requires_grad, backward_hooks[, metadata])``, where ``storage`` is the persistent id
``("storage", torch.FloatStorage, "<key>", "cpu", numel)``: the storage type names the element dtype, the
key names the ``data/<key>`` record and ``numel`` counts its elements. Offsets and strides count elements,
not bytes, and several tensors may view one storage. Dtypes without a legacy storage class (uint16,
uint32, uint64) use ``_rebuild_tensor_v3`` with an untyped (byte) storage and an explicit ``torch.<dtype>``.

The pickle is read by a :class:`~jaxdac.io.safe_pickle.RestrictedUnpickler` whose allow-list holds only the
globals such files contain, each mapped to a local function here that returns numpy arrays; anything else
(``os.system``, ``builtins.eval``, model classes of a ``torch.package`` archive) is refused before it runs.
"""

from __future__ import annotations

import collections
import dataclasses
import io
import os
import re
import sys
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from jaxdac.io.safe_pickle import (
    NUMPY_GLOBALS,
    PLAIN_GLOBALS,
    Marker,
    RestrictedUnpickler,
    UnsafePickleError,
    unwrap,
)

__all__ = ["CheckpointError", "TorchCheckpoint", "read_torch_checkpoint", "normalize_weight_norm_names"]


class CheckpointError(ValueError):
    """A checkpoint file is truncated, corrupt, or not a format this reader understands."""


@dataclasses.dataclass(frozen=True)
class TorchCheckpoint:
    """A checkpoint's tensors (``name -> array``, in file order) and its metadata.

    ``metadata`` is what the original's ``BaseModel.save`` stored beside the weights, typically
    ``{"kwargs": {...constructor arguments of dac.DAC...}}``; ``{}`` for a bare state dict.
    """

    state_dict: dict[str, np.ndarray]
    metadata: dict[str, Any]


# --- dtypes --------------------------------------------------------------------------------------------

# Legacy storage classes (what the pickle names) and torch dtypes (named by _rebuild_tensor_v3), as numpy
# dtype strings. "bfloat16" comes from ml_dtypes, which jax depends on.
_STORAGE_DTYPES = {
    "DoubleStorage": "float64",
    "FloatStorage": "float32",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
    "ComplexDoubleStorage": "complex128",
    "ComplexFloatStorage": "complex64",
}
_TORCH_DTYPES = {
    "float64": "float64", "float32": "float32", "float16": "float16", "bfloat16": "bfloat16",
    "int64": "int64", "int32": "int32", "int16": "int16", "int8": "int8",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "bool": "bool", "complex128": "complex128", "complex64": "complex64",
}


def _numpy_dtype(name: str) -> np.dtype:
    if name == "bfloat16":
        try:
            import ml_dtypes
        except ImportError:
            raise CheckpointError("bfloat16 tensors need the ml_dtypes package (installed with jax)") from None
        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


class _StorageType(Marker):
    __slots__ = ("dtype",)

    def __init__(self, name: str, dtype: str | None):
        super().__init__(f"torch.{name}")
        self.dtype = dtype  # None: untyped bytes


class _TorchDType(Marker):
    __slots__ = ("dtype",)

    def __init__(self, name: str):
        super().__init__(f"torch.{name}")
        self.dtype = _TORCH_DTYPES[name]


# --- tensors -------------------------------------------------------------------------------------------

class _Storage:
    """One ``data/<key>`` record: a flat array of ``numel`` elements in native byte order."""

    __slots__ = ("key", "raw", "dtype", "byteorder", "_flat")

    def __init__(self, key: str, raw: bytes, dtype: str | None, byteorder: str):
        self.key, self.raw, self.dtype, self.byteorder = key, raw, dtype, byteorder
        self._flat: dict[str, np.ndarray] = {}

    def flat(self, dtype_name: str) -> np.ndarray:
        if dtype_name not in self._flat:
            dtype = _numpy_dtype(dtype_name)
            if len(self.raw) % dtype.itemsize:
                raise CheckpointError(f"storage {self.key} has {len(self.raw)} bytes, not whole {dtype_name}s")
            flat = np.frombuffer(self.raw, dtype=dtype)
            if self.byteorder != sys.byteorder and dtype.itemsize > 1:
                flat = flat.byteswap()  # swaps each element (each half of a complex number)
            self._flat[dtype_name] = flat
        return self._flat[dtype_name]


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _view(storage: Any, dtype_name: str, offset: Any, size: Any, stride: Any) -> np.ndarray:
    """The tensor ``storage[offset + sum(i_k * stride_k)]`` of shape ``size``, as a fresh C-contiguous array."""
    if not isinstance(storage, _Storage):
        raise UnsafePickleError(f"refusing a tensor built on {type(storage).__name__}: only stored tensors are allowed")
    size, stride = tuple(size), tuple(stride)
    if not (_is_int(offset) and offset >= 0 and len(size) == len(stride)
            and all(_is_int(n) and n >= 0 for n in size) and all(_is_int(s) and s >= 0 for s in stride)):
        raise CheckpointError(f"tensor on storage {storage.key} has a malformed offset/size/stride")
    flat = storage.flat(dtype_name)
    if 0 in size:
        return np.empty(size, dtype=flat.dtype)
    # The last element a tensor touches must lie inside its storage, or as_strided would read past it.
    last = offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= flat.size:
        raise CheckpointError(
            f"tensor of size {size} stride {stride} at offset {offset} overruns storage {storage.key} "
            f"of {flat.size} elements"
        )
    strided = np.lib.stride_tricks.as_strided(
        flat[offset:], shape=size, strides=tuple(s * flat.itemsize for s in stride), writeable=False
    )
    # A C-ordered copy that owns its data (np.ascontiguousarray would turn a 0-d tensor into 1-d).
    return np.array(strided, order="C", copy=True)


def _apply_metadata(array: np.ndarray, metadata: Any) -> np.ndarray:
    # torch records lazily conjugated / negated views as bits ({"conj": True}, {"neg": True}).
    if not metadata:
        return array
    if not isinstance(metadata, dict) or set(metadata) - {"conj", "neg"}:
        raise CheckpointError(f"unsupported tensor metadata {metadata!r}")
    if metadata.get("neg"):
        array = -array
    if metadata.get("conj"):
        array = np.conj(array)
    return array


def _rebuild_tensor(storage, storage_offset, size, stride):
    if not isinstance(storage, _Storage) or storage.dtype is None:
        raise UnsafePickleError("refusing a tensor without a typed storage: only stored tensors are allowed")
    return _view(storage, storage.dtype, storage_offset, size, stride)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None,
                       metadata=None):
    return _apply_metadata(_rebuild_tensor(storage, storage_offset, size, stride), metadata)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, backward_hooks, dtype,
                       metadata=None):
    if not isinstance(storage, _Storage) or storage.dtype is not None or not isinstance(dtype, _TorchDType):
        raise UnsafePickleError("refusing _rebuild_tensor_v3 without an untyped storage and a torch dtype")
    return _apply_metadata(_view(storage, dtype.dtype, storage_offset, size, stride), metadata)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    # nn.Parameter pickles as its tensor plus flags; the flags mean nothing for numpy.
    if not isinstance(data, np.ndarray):
        raise UnsafePickleError(f"refusing a parameter holding {type(data).__name__}")
    return data


_TENSOR_TYPES = {
    ("torch", "Tensor"): Marker("torch.Tensor"),
    ("torch.nn.parameter", "Parameter"): Marker("torch.nn.parameter.Parameter"),
}


def _rebuild_from_type_v2(func, new_type, args, state):
    # Tensors (and Parameters) carrying Python attributes: rebuild the plain tensor, drop the attributes.
    if unwrap(func) not in (_rebuild_tensor, _rebuild_tensor_v2, _rebuild_tensor_v3, _rebuild_parameter):
        raise UnsafePickleError(f"refusing _rebuild_from_type_v2 with {func!r}")
    if new_type not in _TENSOR_TYPES.values() or not isinstance(args, tuple):
        raise UnsafePickleError(f"refusing _rebuild_from_type_v2 to {new_type!r}")
    return unwrap(func)(*args)


def _device(kind: Any, index: Any = None) -> str:
    if not isinstance(kind, str) or not (index is None or _is_int(index)):
        raise UnsafePickleError("refusing torch.device with non-plain arguments")
    return kind if index is None else f"{kind}:{index}"


def _size(values: Any = ()) -> tuple[int, ...]:
    if not isinstance(values, (tuple, list)) or not all(_is_int(v) for v in values):
        raise UnsafePickleError("refusing torch.Size of non-integers")
    return tuple(values)


def _ordered_dict(*args: Any) -> collections.OrderedDict:
    # torch pickles OrderedDict as OrderedDict() then SETITEMS (and BUILD of its _metadata attribute).
    if len(args) > 1 or (args and not isinstance(args[0], (list, tuple))):
        raise UnsafePickleError("refusing OrderedDict built from non-plain arguments")
    return collections.OrderedDict(*args)


_TORCH_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): _ordered_dict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,
    ("torch.tensor", "_rebuild_from_type_v2"): _rebuild_from_type_v2,  # module name before PyTorch 1.8
    ("torch", "device"): _device,
    ("torch", "Size"): _size,
    ("torch", "UntypedStorage"): _StorageType("UntypedStorage", None),
    ("torch.storage", "UntypedStorage"): _StorageType("UntypedStorage", None),  # how torch >= 2 spells it
    **{("torch", name): _StorageType(name, dtype) for name, dtype in _STORAGE_DTYPES.items()},
    **{("torch", name): _TorchDType(name) for name in _TORCH_DTYPES},
    **_TENSOR_TYPES,
}
_ALLOWED = {**PLAIN_GLOBALS, **NUMPY_GLOBALS, **_TORCH_GLOBALS}


class _CheckpointUnpickler(RestrictedUnpickler):
    """Resolves ``("storage", type, key, location, numel)`` persistent ids to records of the zip."""

    def __init__(self, file, archive: zipfile.ZipFile, prefix: str, byteorder: str):
        super().__init__(file, _ALLOWED)
        self._archive, self._prefix, self._byteorder = archive, prefix, byteorder
        self._storages: dict[str, _Storage] = {}

    def persistent_load(self, pid: Any) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] in ("storage", b"storage")):
            return super().persistent_load(pid)
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType) or not isinstance(key, str) or not _is_int(numel) or numel < 0:
            raise UnsafePickleError(f"refusing persistent id {pid!r}: not a tensor storage")
        if key in self._storages:
            storage = self._storages[key]
            if storage.dtype != storage_type.dtype:  # torch.save refuses to write this
                raise CheckpointError(f"storage {key} is used as both {storage.dtype} and {storage_type.dtype}")
            return storage
        name = f"{self._prefix}data/{key}"
        try:
            info = self._archive.getinfo(name)
        except KeyError:
            raise CheckpointError(f"the record {name} is missing") from None
        nbytes = numel * (1 if storage_type.dtype is None else _numpy_dtype(storage_type.dtype).itemsize)
        # Checked before reading, so a record cannot make us inflate more than the tensor needs.
        if info.file_size != nbytes:
            raise CheckpointError(f"the record {name} has {info.file_size} bytes, expected {nbytes}")
        storage = self._storages[key] = _Storage(key, self._archive.read(info), storage_type.dtype, self._byteorder)
        return storage


# --- files ---------------------------------------------------------------------------------------------

# torch.save before PyTorch 1.6 wrote consecutive pickles starting with this magic number (protocol 2, LONG1).
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def read_torch_checkpoint(path: str | os.PathLike) -> TorchCheckpoint:
    """Read a checkpoint saved by ``torch.save`` (zip format) without torch and without running pickled code.

    Accepts ``{"state_dict": ..., "metadata": ...}`` (the original's ``model.save(path, package=False)``,
    the format of the released DAC weights) and a bare state dict. Names are returned unchanged; see
    :func:`normalize_weight_norm_names`. Raises :class:`~jaxdac.io.safe_pickle.UnsafePickleError` if the
    pickle asks for anything but tensors and plain values, :class:`CheckpointError` for truncated, corrupt
    or unsupported files (the legacy pre-1.6 format, ``torch.package`` archives).
    """
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(_LEGACY_MAGIC))
    if head.startswith(_LEGACY_MAGIC):
        raise CheckpointError(
            f"{path} uses the legacy (pre-1.6) torch.save format, which is not supported; "
            "re-save it with a recent PyTorch (torch.save(torch.load(path), path))"
        )
    if not head.startswith(b"PK"):
        raise CheckpointError(f"{path} is not a PyTorch checkpoint (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            obj = _read_archive(path, archive)
    except (UnsafePickleError, CheckpointError) as e:
        raise type(e)(f"{path}: {e}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as e:
        raise CheckpointError(f"{path} is a truncated or corrupt checkpoint: {e or type(e).__name__}") from None
    except Exception as e:  # whatever a corrupt pickle raises inside pickle or numpy
        raise CheckpointError(f"{path}: data.pkl is corrupt: {type(e).__name__}: {e}") from None
    return _split(path, obj)


def _read_archive(path: Path, archive: zipfile.ZipFile) -> Any:
    names = archive.namelist()
    if ".data/extern_modules" in names or any(n.endswith("/.data/extern_modules") for n in names):
        raise CheckpointError(
            "it is a torch.package archive (model.save(path) with package=True), which holds code; "
            "save the weights with package=False"
        )
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") <= 1 and n.rpartition("/")[2] == "data.pkl"]
    if len(pickles) != 1:
        raise CheckpointError(
            "it has no data.pkl record" if not pickles else f"it has {len(pickles)} data.pkl records"
        )
    prefix = pickles[0][: -len("data.pkl")]  # "<archive>/"
    byteorder = "little"
    if f"{prefix}byteorder" in names:
        byteorder = archive.read(f"{prefix}byteorder").decode("ascii", "replace")
        if byteorder not in ("little", "big"):
            raise CheckpointError(f"unknown byte order {byteorder!r}")
    data = archive.read(pickles[0])
    return _CheckpointUnpickler(io.BytesIO(data), archive, prefix, byteorder).load()


def _split(path: Path, obj: Any) -> TorchCheckpoint:
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        state_dict, metadata = obj["state_dict"], obj.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise CheckpointError(f"{path}: metadata is a {type(metadata).__name__}, not a dict")
    elif isinstance(obj, Mapping):
        state_dict, metadata = obj, {}
    else:
        raise CheckpointError(f"{path} holds a {type(obj).__name__}, not a state dict")
    for name, value in state_dict.items():
        if not isinstance(name, str) or not isinstance(value, np.ndarray):
            raise CheckpointError(
                f"{path}: state dict entry {name!r} is a {type(value).__name__}, not a tensor"
            )
    return TorchCheckpoint(state_dict=dict(state_dict), metadata=dict(metadata))


# --- names ---------------------------------------------------------------------------------------------

_PARAMETRIZED = re.compile(r"^(?:(?P<module>.*)\.)?parametrizations\.weight\.original(?P<which>[01])$")


def normalize_weight_norm_names(state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Rename ``torch.nn.utils.parametrizations.weight_norm`` entries to the classic weight-norm names.

    ``X.parametrizations.weight.original0`` (the magnitude ``g``) becomes ``X.weight_g`` and ``...original1``
    (the direction ``v``) becomes ``X.weight_v``; every other entry is kept, in order. Two entries that end
    up with the same name are an error.
    """
    out: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, value in state_dict.items():
        match = _PARAMETRIZED.match(name)
        new = name
        if match:
            suffix = "weight_g" if match["which"] == "0" else "weight_v"
            new = f"{match['module']}.{suffix}" if match["module"] else suffix
        if new in out:
            raise ValueError(f"both {sources[new]!r} and {name!r} give the weight-norm entry {new!r}")
        out[new] = value
        sources[new] = name
    return out
