"""The restricted unpickler: plain values and numpy arrays load, nothing a pickle asks for gets run."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess

import numpy as np
import pytest

from jaxdac.io import safe_pickle
from jaxdac.io.safe_pickle import UnsafePickleError, restricted_loads


class Touch:
    """Unpickling this runs ``callable(*args)``: the classic pickle attack."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def touch_command(marker) -> str:
    return f"touch {marker}"


PLAIN = {
    "int": 3,
    "big": 2**80,
    "float": -1.5,
    "complex": 1 + 2j,
    "none": None,
    "bools": [True, False],
    "str": "grüße",
    "bytes": b"\x00\xff",
    "bytearray": bytearray(b"ab"),
    "tuple": (1, (2, 3)),
    "set": {1, 2},
    "frozenset": frozenset({"a"}),
    "nested": {"a": [{"b": 1}]},
}


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_values_load_with_every_protocol(protocol):
    assert restricted_loads(pickle.dumps(PLAIN, protocol=protocol)) == PLAIN


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_numpy_arrays_scalars_and_dtypes_load(protocol):
    structured = np.zeros(2, dtype=[("x", "<f4"), ("y", ">i2", (2,))])
    structured["y"] = [[1, -2], [3, 4]]
    values = {
        "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
        "fortran": np.asfortranarray(np.arange(6, dtype=np.int64).reshape(2, 3)),
        "big_endian": np.arange(4, dtype=">u2"),
        "bool": np.array([True, False]),
        "empty": np.zeros((0, 3), np.float16),
        "zero_d": np.array(7, np.uint16),
        "structured": structured,
        "objects": np.array([1, "two", None], dtype=object),
        "scalar_f32": np.float32(2.5),
        "scalar_i64": np.int64(-9),
        "scalar_bool": np.bool_(True),
        "dtype": np.dtype(">c8"),
    }
    data = pickle.dumps(values, protocol=protocol)
    loaded, trusted = restricted_loads(data), pickle.loads(data)  # the same data through the real pickle
    for key, value in trusted.items():
        got = loaded[key]
        assert type(got) is type(value), key
        if isinstance(value, np.ndarray):
            assert got.dtype == value.dtype and got.shape == value.shape, key
            assert got.tobytes() == value.tobytes() if value.dtype != object else list(got) == list(value), key
            assert got.flags.f_contiguous == value.flags.f_contiguous, key
        else:
            assert got == value, key


def test_old_numpy_module_names_load():
    # numpy < 2 wrote numpy.core.multiarray; protocol 2 spells globals as text, so the rename is exact.
    data = pickle.dumps({"a": np.arange(3, dtype=np.int32), "s": np.float64(1.5)}, protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    loaded = restricted_loads(old)
    np.testing.assert_array_equal(loaded["a"], np.arange(3, dtype=np.int32))
    assert loaded["s"] == 1.5 and loaded["s"].dtype == np.float64


@pytest.mark.parametrize(
    "payload, refused",
    [
        (lambda m: Touch(os.system, touch_command(m)), "system"),
        (lambda m: Touch(builtins.eval, f"__import__('os').system({touch_command(m)!r})"), "eval"),
        (lambda m: Touch(builtins.exec, f"open({str(m)!r}, 'w')"), "exec"),
        (lambda m: Touch(subprocess.call, ["touch", str(m)]), "call"),
        (lambda m: Touch(builtins.open, str(m), "w"), "open"),
        (lambda m: Touch(np.save, str(m), np.zeros(1)), "save"),
        # hidden inside allowed containers and inside an object array
        (lambda m: {"a": [1, {"b": Touch(os.system, touch_command(m))}]}, "system"),
        (lambda m: np.array([1, Touch(os.system, touch_command(m))], dtype=object), "system"),
    ],
)
@pytest.mark.parametrize("protocol", [0, 2, 4])
def test_globals_outside_the_allow_list_are_refused_and_never_run(tmp_path, payload, refused, protocol):
    marker = tmp_path / "pwned"
    data = pickle.dumps(payload(marker), protocol=protocol)
    with pytest.raises(UnsafePickleError, match=rf"refusing to load \S*\.{refused}: only tensors, arrays and plain"):
        restricted_loads(data)
    assert not marker.exists()


def test_refusal_names_the_global():
    with pytest.raises(UnsafePickleError) as info:
        restricted_loads(b"cos\nsystem\n(S'true'\ntR.")
    assert str(info.value) == "refusing to load os.system: only tensors, arrays and plain values are allowed"


def test_persistent_ids_are_refused():
    with pytest.raises(UnsafePickleError, match="persistent id"):
        restricted_loads(b"\x80\x02X\x03\x00\x00\x00abcQ.")  # BINUNICODE 'abc', BINPERSID


def test_allowed_callables_cannot_be_modified_by_build():
    # GLOBAL _codecs.encode, then BUILD with slot state {'__defaults__': ('latin1',)}: would rewrite the
    # defaults of our function for every later load if BUILD reached it.
    data = b"\x80\x02c_codecs\nencode\nN}X\x0c\x00\x00\x00__defaults__X\x06\x00\x00\x00latin1\x85s\x86b."
    before = safe_pickle._codecs_encode.__defaults__
    with pytest.raises(UnsafePickleError, match="modify _codecs.encode"):
        restricted_loads(data)
    assert safe_pickle._codecs_encode.__defaults__ == before


def test_allowed_callables_are_not_types_for_newobj():
    data = b"\x80\x02c__builtin__\nset\n)\x81."  # NEWOBJ set()
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(data)


def test_ndarray_marker_cannot_be_called_or_modified():
    with pytest.raises(UnsafePickleError, match="call numpy.ndarray"):
        restricted_loads(b"\x80\x02cnumpy\nndarray\nK\x03\x85R.")  # ndarray(3)
    with pytest.raises(UnsafePickleError, match="modify numpy.ndarray"):
        restricted_loads(b"\x80\x02cnumpy\nndarray\n}b.")


def test_reconstruct_needs_the_ndarray_marker():
    # _reconstruct(set, (0,), b'b'): the subtype must be numpy.ndarray.
    data = b"\x80\x02cnumpy._core.multiarray\n_reconstruct\nc__builtin__\nset\nK\x00\x85C\x01b\x87R."
    with pytest.raises(UnsafePickleError, match="_reconstruct"):
        restricted_loads(data)


def test_codecs_encode_only_decodes_latin1():
    with pytest.raises(UnsafePickleError, match="_codecs.encode"):
        restricted_loads(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00aX\x05\x00\x00\x00rot13\x86R.")


def test_custom_allow_list_replaces_the_default():
    data = pickle.dumps(np.arange(3))
    with pytest.raises(UnsafePickleError, match="numpy"):
        restricted_loads(data, allowed=safe_pickle.PLAIN_GLOBALS)
