"""A restricted unpickler: pickles may rebuild arrays and plain values, nothing else.

A pickle is a small program. Its ``GLOBAL``/``STACK_GLOBAL``/``INST``/``EXT*`` opcodes import a callable
by name (through :meth:`pickle.Unpickler.find_class`) and ``REDUCE``/``NEWOBJ``/``BUILD`` call it; that is
how ``os.system`` ends up running when an untrusted pickle is loaded. Everything that can be called while
unpickling must first come out of ``find_class`` (or ``persistent_load``), so those two methods are the
whole gate: :class:`RestrictedUnpickler` answers ``find_class`` from an explicit table of
``(module, name) -> local callable`` and refuses every other name, and refuses every persistent id unless
a subclass says what it means.

The callables in the tables below are our own small functions, not numpy's or torch's: each checks the
types of its arguments and builds a plain value. ``numpy.ndarray`` maps to a marker object that cannot be
called or instantiated by the pickle; only :func:`_reconstruct` accepts it.
"""

from __future__ import annotations

import io
import pickle
from typing import IO, Any, Callable, Mapping

import numpy as np

__all__ = [
    "UnsafePickleError",
    "RestrictedUnpickler",
    "restricted_loads",
    "PLAIN_GLOBALS",
    "NUMPY_GLOBALS",
    "Marker",
    "unwrap",
]


class UnsafePickleError(ValueError):
    """A pickle asked for something outside the allow-list (a global, a persistent id); nothing was run."""


class Marker:
    """A named stand-in for a class that a pickle may mention but never call (e.g. ``numpy.ndarray``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return f"<{self.name}>"

    def __call__(self, *args: Any) -> Any:  # REDUCE on a marker
        raise _refuse(f"to call {self.name}")

    def __setstate__(self, state: Any) -> None:  # BUILD on a marker
        raise _refuse(f"to modify {self.name}")

    def __reduce__(self):  # never let a marker leak into something that gets pickled again
        raise TypeError(f"{self!r} is a placeholder of the restricted unpickler")


class _Call:
    """What ``find_class`` hands out for an allowed callable.

    The wrapper can be called (REDUCE) but is not a type, so NEWOBJ refuses it, and its ``__setstate__``
    refuses BUILD, so a pickle cannot rewrite our functions' ``__defaults__`` or ``__dict__`` for later loads.
    """

    __slots__ = ("fn", "name")

    def __init__(self, fn: Callable[..., Any], name: str):
        self.fn = fn
        self.name = name

    def __call__(self, *args: Any) -> Any:
        return self.fn(*args)

    def __setstate__(self, state: Any) -> None:
        raise _refuse(f"to modify {self.name}")

    def __repr__(self) -> str:
        return f"<allowed {self.name}>"

    def __reduce__(self):
        raise TypeError(f"{self!r} is a placeholder of the restricted unpickler")


def unwrap(obj: Any) -> Any:
    """The function behind an allowed callable handed out by :meth:`RestrictedUnpickler.find_class`."""
    return obj.fn if isinstance(obj, _Call) else obj


def _refuse(what: str) -> UnsafePickleError:
    return UnsafePickleError(f"refusing {what}: only tensors, arrays and plain values are allowed")


# --- plain Python values -------------------------------------------------------------------------------

def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    # Protocol 2 has no bytes opcode: Python 3 writes b"..." as _codecs.encode("...", "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise _refuse(f"_codecs.encode({type(text).__name__}, {encoding!r})")
    return text.encode("latin1")


def _checked(kind: type, accepted: tuple[type, ...] = (list, tuple, set, frozenset, str, bytes)):
    def build(*args: Any) -> Any:
        if len(args) > 1 or (args and not isinstance(args[0], accepted)):
            raise _refuse(f"{kind.__name__} built from {', '.join(type(a).__name__ for a in args)}")
        return kind(*args)

    build.__name__ = kind.__name__
    return build


def _complex(real: Any = 0.0, imag: Any = 0.0) -> complex:
    if not all(isinstance(x, (int, float)) for x in (real, imag)):
        raise _refuse("complex built from non-numbers")
    return complex(real, imag)


PLAIN_GLOBALS: dict[tuple[str, str], Callable[..., Any]] = {}
for _module in ("builtins", "__builtin__"):  # protocol 0-2 pickles may spell builtins the Python 2 way
    PLAIN_GLOBALS[(_module, "set")] = _checked(set)
    PLAIN_GLOBALS[(_module, "frozenset")] = _checked(frozenset)
    PLAIN_GLOBALS[(_module, "bytearray")] = _checked(bytearray, (bytes, bytearray, list))
    PLAIN_GLOBALS[(_module, "bytes")] = _checked(bytes, (bytes, list))  # protocol 2 writes b"" as bytes()
    PLAIN_GLOBALS[(_module, "complex")] = _complex
PLAIN_GLOBALS[("_codecs", "encode")] = _codecs_encode


# --- numpy arrays, dtypes and scalars --------------------------------------------------------------------
#
# numpy pickles an array as  _reconstruct(ndarray, (0,), b"b")  followed by BUILD with the state
# (version, shape, dtype, is_fortran, raw bytes or, for object arrays, a list of already-unpickled items).
# A dtype is  dtype("f4", False, True)  followed by BUILD with (version, byte order, subdtype, names,
# fields, itemsize, alignment, flags). A scalar is  scalar(dtype, raw bytes). numpy >= 2 names the module
# numpy._core.multiarray, older numpy numpy.core.multiarray; protocol 5 pickles use numeric._frombuffer.
# ndarray.__setstate__ and dtype.__setstate__ (called by BUILD) only copy data and check it for
# consistency, so it is safe to let BUILD reach them once the objects come from the functions below.

NDARRAY = Marker("numpy.ndarray")


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
    if subtype is not NDARRAY:
        raise _refuse(f"numpy _reconstruct of {subtype!r}")
    if not isinstance(shape, tuple) or not isinstance(typecode, (bytes, str)):
        raise _refuse("numpy _reconstruct with malformed arguments")
    # The real shape and dtype arrive with BUILD (ndarray.__setstate__).
    return np.empty((0,), dtype=np.uint8)


def _dtype(spec: Any, align: Any = False, copy: Any = False) -> np.dtype:
    if not isinstance(spec, str) or not isinstance(align, bool) or not isinstance(copy, bool):
        raise _refuse(f"numpy.dtype({spec!r})")
    try:
        return np.dtype(spec, align=align, copy=copy)
    except TypeError as e:
        raise pickle.UnpicklingError(f"bad dtype {spec!r}: {e}") from None


def _scalar(dtype: Any, data: Any = None) -> Any:
    if not isinstance(dtype, np.dtype):
        raise _refuse("numpy scalar without a dtype")
    if dtype.hasobject:
        raise _refuse("numpy object scalar")
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f"numpy scalar of {dtype} without its {dtype.itemsize} bytes")
    return np.frombuffer(data, dtype=dtype, count=1)[0]


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    if not isinstance(buffer, (bytes, bytearray)) or not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _refuse("numpy _frombuffer with malformed arguments")
    if not isinstance(shape, tuple) or order not in ("C", "F"):
        raise _refuse("numpy _frombuffer with malformed shape or order")
    return np.frombuffer(bytes(buffer), dtype=dtype).reshape(shape, order=order).copy(order="K")


NUMPY_GLOBALS: dict[tuple[str, str], Any] = {("numpy", "ndarray"): NDARRAY, ("numpy", "dtype"): _dtype}
for _module in ("numpy.core.multiarray", "numpy._core.multiarray"):
    NUMPY_GLOBALS[(_module, "_reconstruct")] = _reconstruct
    NUMPY_GLOBALS[(_module, "scalar")] = _scalar
for _module in ("numpy.core.numeric", "numpy._core.numeric"):
    NUMPY_GLOBALS[(_module, "_frombuffer")] = _frombuffer


# --- the unpickler -----------------------------------------------------------------------------------------

class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` answers only from ``allowed``.

    ``allowed`` maps ``(module, name)`` to the object the pickle receives instead of the real global.
    Persistent ids are refused; a subclass that understands some overrides :meth:`persistent_load`.
    """

    def __init__(self, file: IO[bytes], allowed: Mapping[tuple[str, str], Any]):
        super().__init__(file)
        self._allowed = dict(allowed)

    def find_class(self, module: str, name: str) -> Any:
        try:
            target = self._allowed[(module, name)]
        except (KeyError, TypeError):
            raise _refuse(f"to load {module}.{name}") from None
        return target if isinstance(target, Marker) else _Call(target, f"{module}.{name}")

    def persistent_load(self, pid: Any) -> Any:
        raise _refuse(f"persistent id {pid!r}")


def restricted_loads(data: bytes, allowed: Mapping[tuple[str, str], Any] | None = None) -> Any:
    """Unpickle ``data`` admitting only ``allowed`` (default: plain values and numpy arrays)."""
    if allowed is None:
        allowed = {**PLAIN_GLOBALS, **NUMPY_GLOBALS}
    return RestrictedUnpickler(io.BytesIO(data), allowed).load()
