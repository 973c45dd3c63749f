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
import struct
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

__all__ = [
    "CheckpointError",
    "TorchCheckpoint",
    "read_torch_checkpoint",
    "write_torch_checkpoint",
    "normalize_weight_norm_names",
]


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


# --- writing -------------------------------------------------------------------------------------------

# Storage classes by numpy dtype, for the tensors we write (the reverse of _STORAGE_DTYPES).
_WRITE_STORAGES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}
_ALIGNMENT = 64  # torch.save aligns every record's data to 64 bytes (what mmap loading needs)


class _PickleWriter:
    """Emits protocol-2 pickle opcodes for plain values and tensors, the way ``torch.save`` writes them.

    Only what a checkpoint of ours holds can be written: dicts with string keys, lists, tuples, str, int,
    float, bool, None and numpy arrays (as tensors on ``data/<key>`` storages). Everything else is an error,
    so nothing we write can make a reader run code.
    """

    def __init__(self):
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self.storages: list[np.ndarray] = []

    def _global(self, module: str, name: str) -> None:
        self.out += f"c{module}\n{name}\n".encode()

    def _str(self, text: str) -> None:
        raw = text.encode("utf-8")
        self.out += b"X" + struct.pack("<I", len(raw)) + raw

    def _int(self, n: int) -> None:
        if 0 <= n < 256:
            self.out += b"K" + bytes([n])
        elif -(2**31) <= n < 2**31:
            self.out += b"J" + struct.pack("<i", n)
        else:
            raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
            self.out += b"\x8a" + bytes([len(raw)]) + raw  # LONG1

    def _tuple(self, items) -> None:
        self.out += b"("
        for item in items:
            self.write(item)
        self.out += b"t"

    def _tensor(self, array: np.ndarray) -> None:
        # torch._utils._rebuild_tensor_v2(storage, offset 0, size, contiguous stride, False, OrderedDict())
        array = np.asarray(array, order="C")  # (np.ascontiguousarray would make a 0-d tensor 1-d)
        storage = _WRITE_STORAGES.get(array.dtype)
        if storage is None:
            raise TypeError(f"cannot write a tensor of dtype {array.dtype}")
        key = str(len(self.storages))
        self.storages.append(array)
        strides = tuple(s // array.itemsize for s in array.strides) if array.size else (1,) * array.ndim
        self._global("torch._utils", "_rebuild_tensor_v2")
        self.out += b"(("
        self._str("storage")
        self._global("torch", storage)
        self._str(key)
        self._str("cpu")
        self._int(array.size)
        self.out += b"tQ"  # TUPLE, BINPERSID: the storage is the persistent id ("storage", type, key, loc, numel)
        self._int(0)
        self._tuple(array.shape)
        self._tuple(strides)
        self.out += b"\x89"  # requires_grad False
        self._global("collections", "OrderedDict")
        self.out += b")R"  # backward hooks: OrderedDict()
        self.out += b"tR"

    def write(self, value: Any) -> None:
        if value is None:
            self.out += b"N"
        elif value is True or value is False:
            self.out += b"\x88" if value else b"\x89"
        elif isinstance(value, (int, np.integer)):
            self._int(int(value))
        elif isinstance(value, (float, np.floating)):
            self.out += b"G" + struct.pack(">d", float(value))
        elif isinstance(value, str):
            self._str(value)
        elif isinstance(value, np.ndarray):
            self._tensor(value)
        elif isinstance(value, tuple):
            self._tuple(value)
        elif isinstance(value, list):
            self.out += b"]("
            for item in value:
                self.write(item)
            self.out += b"e"  # APPENDS
        elif isinstance(value, Mapping):
            if isinstance(value, collections.OrderedDict):
                self._global("collections", "OrderedDict")
                self.out += b")R("
            else:
                self.out += b"}("
            for k, v in value.items():
                if not isinstance(k, str):
                    raise TypeError(f"dict keys must be strings, got {k!r}")
                self._str(k)
                self.write(v)
            self.out += b"u"  # SETITEMS
        else:
            raise TypeError(f"cannot write a value of type {type(value).__name__} into a checkpoint")


def write_torch_checkpoint(
    path: str | os.PathLike,
    state_dict: Mapping[str, np.ndarray],
    metadata: Mapping[str, Any] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write ``{"state_dict": OrderedDict(state_dict), "metadata": metadata}`` as ``torch.save`` would,
    without torch: the zip layout described at the top of this module, every record stored uncompressed
    with its data aligned to 64 bytes. ``torch.load`` (also with ``weights_only=True``) and the original's
    ``BaseModel.load`` read it; so does :func:`read_torch_checkpoint`. Written atomically.
    """
    from jaxdac.io.atomic import atomic_output

    path = Path(path)
    pickler = _PickleWriter()
    obj: dict[str, Any] = {"state_dict": collections.OrderedDict((k, np.asarray(v)) for k, v in state_dict.items())}
    if metadata is not None:
        obj["metadata"] = dict(metadata)
    pickler.write(obj)
    pickler.out += b"."  # STOP
    prefix = "archive/"
    records: list[tuple[str, bytes]] = [
        (f"{prefix}data.pkl", bytes(pickler.out)),
        (f"{prefix}.format_version", b"1"),
        (f"{prefix}.storage_alignment", str(_ALIGNMENT).encode()),
        (f"{prefix}byteorder", sys.byteorder.encode()),
    ]
    records += [(f"{prefix}data/{i}", a.tobytes()) for i, a in enumerate(pickler.storages)]
    records.append((f"{prefix}version", b"3\n"))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, overwrite=overwrite) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
            for name, data in records:
                info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                # Local header: 30 bytes + name + extra; pad the extra field ("FB" block, as torch does)
                # so that the data starts on an alignment boundary.
                start = f.tell() + 30 + len(name.encode()) + 4
                info.extra = b"FB" + struct.pack("<H", -start % _ALIGNMENT) + b"\0" * (-start % _ALIGNMENT)
                archive.writestr(info, data)
    return path
