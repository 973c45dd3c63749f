"""Reading torch.save checkpoints without torch: exact values, layouts, and refusal of anything else."""

from __future__ import annotations

import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest

from jaxdac.io.safe_pickle import UnsafePickleError
from jaxdac.weights.torch_checkpoint import (
    CheckpointError,
    TorchCheckpoint,
    normalize_weight_norm_names,
    read_torch_checkpoint,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
EXPECTED = FIXTURES / "tiny_state_dict.npz"


def unpack(npz, group: str) -> dict[str, np.ndarray]:
    """Reverse of make_fixtures_files.pack: names, shapes and one float32 vector -> state dict."""
    names, shapes, values = npz[f"{group}.names"], json.loads(str(npz[f"{group}.shapes"])), npz[f"{group}.values"]
    out, start = {}, 0
    for name, shape in zip(names, shapes):
        size = int(np.prod(shape))
        out[str(name)] = values[start:start + size].reshape(shape)
        start += size
    assert start == values.size
    return out


# --- hand-written torch pickles (protocol 2), to build checkpoints without torch ----------------------------

def g(module: str, name: str) -> bytes:
    return f"c{module}\n{name}\n".encode()


def s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:
    return func + tup(*args) + b"R"


def storage(kind: str, key: str, numel: int) -> bytes:
    """The persistent id ('storage', torch.<kind>, key, 'cpu', numel)."""
    return tup(s("storage"), g("torch", kind), s(key), s("cpu"), i(numel)) + b"Q"


def tensor(store: bytes, offset: int, size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    hooks = call(g("collections", "OrderedDict"))
    return call(g("torch._utils", "_rebuild_tensor_v2"), store, i(offset), tup(*map(i, size)),
                tup(*map(i, stride)), b"\x89", hooks)


def pickle_of(items: dict[str, bytes]) -> bytes:
    return b"\x80\x02}(" + b"".join(s(k) + v for k, v in items.items()) + b"u."


def write_zip(path: Path, data_pkl: bytes, records: dict[str, bytes] | None = None, byteorder: str | None = "little",
              archive: str = "archive") -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{archive}/data.pkl", data_pkl)
        if byteorder is not None:
            z.writestr(f"{archive}/byteorder", byteorder)
        for key, raw in (records or {}).items():
            z.writestr(f"{archive}/data/{key}", raw)
        z.writestr(f"{archive}/version", "3\n")
    return path


def rewrite_zip(src: Path, dst: Path, edit) -> Path:
    """Copy a checkpoint, passing each record through ``edit(name, data) -> data | None`` (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


# --- the original's checkpoints -----------------------------------------------------------------------------

@pytest.mark.parametrize("group", ["weight_norm", "parametrizations"])
def test_every_tensor_of_the_original_checkpoints_is_exact(group):
    npz = np.load(EXPECTED)
    expected = unpack(npz, group)
    ckpt = read_torch_checkpoint(FIXTURES / f"tiny_{group}.pth")
    assert isinstance(ckpt, TorchCheckpoint)
    assert list(ckpt.state_dict) == list(expected)  # same names, same order
    for name, value in expected.items():
        got = ckpt.state_dict[name]
        assert got.dtype == np.float32 and got.shape == value.shape, name
        np.testing.assert_array_equal(got, value, err_msg=name)
    assert ckpt.metadata == {"kwargs": json.loads(str(npz["kwargs_json"]))}
    assert ckpt.metadata["kwargs"]["encoder_rates"] == [2, 4, 8, 8]
    assert ckpt.metadata["kwargs"]["quantizer_dropout"] is False


def test_the_two_checkpoints_differ_in_names_only_where_expected():
    classic = read_torch_checkpoint(FIXTURES / "tiny_weight_norm.pth").state_dict
    parametrized = read_torch_checkpoint(FIXTURES / "tiny_parametrizations.pth").state_dict
    assert any(".parametrizations.weight.original0" in k for k in parametrized)
    assert not any("parametrizations" in k for k in classic)
    normalized = normalize_weight_norm_names(parametrized)
    assert list(normalized) == list(classic)
    for name in classic:
        assert normalized[name].shape == classic[name].shape, name
    # g is the per-output-channel norm of the effective weight in both conventions.
    for name in (k for k in classic if k.endswith(".weight_v")):
        stem = name[: -len(".weight_v")]
        w = normalized[f"{stem}.weight_v"]
        norm = np.sqrt((w.astype(np.float64) ** 2).sum(axis=tuple(range(1, w.ndim)), keepdims=True))
        np.testing.assert_allclose(normalized[f"{stem}.weight_g"], norm, rtol=1e-5, err_msg=stem)


def test_tensor_layouts_and_dtypes():
    npz = np.load(EXPECTED)
    state = read_torch_checkpoint(FIXTURES / "tiny_layouts.pth").state_dict
    expected_dtypes = {
        "base": "float32", "transposed": "float32", "row": "float32", "column": "float32",
        "every_other": "float32", "scalar": "float64", "empty": "float32", "parameter": "float32",
        "half": "float16", "bfloat16": "bfloat16", "int64": "int64", "int32": "int32", "int8": "int8",
        "uint8": "uint8", "bool": "bool", "uint16": "uint16", "complex": "complex64", "conj": "complex64",
    }
    assert list(state) == list(expected_dtypes)
    for name, dtype in expected_dtypes.items():
        got, want = state[name], npz[f"layouts.{name}"]
        assert str(got.dtype) == dtype, name
        assert got.shape == want.shape, name
        bits = got.view(np.uint16) if dtype == "bfloat16" else got
        np.testing.assert_array_equal(bits, want, err_msg=name)
        assert got.flags.c_contiguous and got.flags.owndata and got.flags.writeable, name
    np.testing.assert_array_equal(state["transposed"], state["base"].T)
    np.testing.assert_array_equal(state["every_other"], state["base"][1::2, ::2])
    np.testing.assert_array_equal(state["conj"], np.conj(state["complex"]))
    assert state["scalar"].shape == () and state["scalar"] == 2.5
    # views of one storage are independent copies
    state["base"][0, 0] = 123.0
    assert state["transposed"][0, 0] != 123.0


def test_big_endian_checkpoint(tmp_path):
    # torch on a big-endian machine writes byteorder "big" and big-endian storages.
    def to_big(name, data):
        if name.endswith("/byteorder"):
            return b"big"
        if "/data/" in name:
            return np.frombuffer(data, "<f4").astype(">f4").tobytes()
        return data

    path = rewrite_zip(FIXTURES / "tiny_weight_norm.pth", tmp_path / "big.pth", to_big)
    expected = unpack(np.load(EXPECTED), "weight_norm")
    got = read_torch_checkpoint(path).state_dict
    for name, value in expected.items():
        assert got[name].dtype.isnative, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


def test_missing_byteorder_means_little_endian(tmp_path):
    path = rewrite_zip(FIXTURES / "tiny_weight_norm.pth", tmp_path / "old.pth",
                       lambda name, data: None if name.endswith("/byteorder") else data)
    expected = unpack(np.load(EXPECTED), "weight_norm")
    got = read_torch_checkpoint(path).state_dict
    np.testing.assert_array_equal(got["encoder.block.0.weight_v"], expected["encoder.block.0.weight_v"])


def test_bare_state_dict_and_any_archive_name(tmp_path):
    raw = np.arange(6, dtype="<f4").tobytes()
    pkl = pickle_of({"w": tensor(storage("FloatStorage", "0", 6), 1, (2, 2), (1, 2))})
    path = write_zip(tmp_path / "bare.pth", pkl, {"0": raw}, archive="something_else")
    ckpt = read_torch_checkpoint(path)
    assert ckpt.metadata == {}
    np.testing.assert_array_equal(ckpt.state_dict["w"], np.array([[1, 3], [2, 4]], np.float32))


def test_big_endian_uint16_through_rebuild_tensor_v3(tmp_path):
    raw = np.array([1, 2, 65535], ">u2").tobytes()
    store = tup(s("storage"), g("torch.storage", "UntypedStorage"), s("0"), s("cpu"), i(6)) + b"Q"
    v3 = call(g("torch._utils", "_rebuild_tensor_v3"), store, i(0), tup(i(3)), tup(i(1)), b"\x89",
              call(g("collections", "OrderedDict")), g("torch", "uint16"))
    path = write_zip(tmp_path / "u16.pth", pickle_of({"u": v3}), {"0": raw}, byteorder="big")
    got = read_torch_checkpoint(path).state_dict["u"]
    assert got.dtype == np.uint16 and got.tolist() == [1, 2, 65535]


# --- refusing malicious checkpoints -------------------------------------------------------------------------

class Touch:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def inner(obj) -> bytes:
    """A protocol-2 pickle of ``obj`` without its PROTO and STOP opcodes, to splice into another pickle."""
    data = pickle.dumps(obj, protocol=2)
    assert data[:2] == b"\x80\x02" and data[-1:] == b"."
    return data[2:-1]


def malicious_pickles(marker: Path) -> dict[str, bytes]:
    touch = f"touch {marker}"
    return {
        "os.system": pickle.dumps({"state_dict": Touch(os.system, touch)}, protocol=2),
        "builtins.eval": pickle.dumps(Touch(eval, f"__import__('os').system({touch!r})"), protocol=2),
        # a real tensor rebuild whose storage argument is an os.system call
        "nested in _rebuild_tensor_v2": pickle_of(
            {"w": call(g("torch._utils", "_rebuild_tensor_v2"), inner(Touch(os.system, touch)), i(0),
                       tup(i(1)), tup(i(1)), b"\x89", call(g("collections", "OrderedDict")))}
        ),
        # ... and one whose backward hooks are
        "nested hooks": pickle_of(
            {"w": call(g("torch._utils", "_rebuild_tensor_v2"), storage("FloatStorage", "0", 1), i(0),
                       tup(i(1)), tup(i(1)), b"\x89", inner(Touch(os.system, touch)))}
        ),
        # a storage type that is a dangerous callable
        "storage type": pickle_of({"w": tup(s("storage"), g("os", "system"), s("0"), s("cpu"), i(1)) + b"Q"}),
        # torch.load's own gadgets are not allowed either
        "torch.load": pickle_of({"w": call(g("torch", "load"), s(str(marker)))}),
    }


@pytest.mark.parametrize("case", list(malicious_pickles(Path("x"))))
def test_malicious_checkpoint_is_refused_and_nothing_runs(tmp_path, case):
    marker = tmp_path / "pwned"
    path = write_zip(tmp_path / "evil.pth", malicious_pickles(marker)[case], {"0": b"\0\0\0\0"})
    with pytest.raises(UnsafePickleError, match=r"evil\.pth: refusing to load \S+: only tensors"):
        read_torch_checkpoint(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    "pkl, message",
    [
        (pickle_of({"w": tup(s("module"), s("x")) + b"Q"}), "refusing persistent id"),
        (pickle_of({"w": call(g("torch._utils", "_rebuild_tensor_v2"), s("not a storage"), i(0), tup(i(1)),
                               tup(i(1)), b"\x89", b"N")}), "refusing a tensor"),
        (pickle_of({"w": call(g("torch", "FloatStorage"))}), "refusing to call torch.FloatStorage"),
    ],
)
def test_misused_allowed_names_are_refused(tmp_path, pkl, message):
    path = write_zip(tmp_path / "odd.pth", pkl, {"0": b"\0\0\0\0"})
    with pytest.raises(UnsafePickleError, match=message):
        read_torch_checkpoint(path)


# --- truncated, corrupt and unsupported files ---------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.99])
def test_truncated_checkpoint_gives_one_clear_error(tmp_path, fraction):
    data = (FIXTURES / "tiny_weight_norm.pth").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(CheckpointError, match=r"cut\.pth (is a truncated or corrupt checkpoint|is not a PyTorch)"):
        read_torch_checkpoint(path)


def test_corrupt_storage_fails_the_crc(tmp_path):
    data = bytearray((FIXTURES / "tiny_weight_norm.pth").read_bytes())
    with zipfile.ZipFile(FIXTURES / "tiny_weight_norm.pth") as z:
        info = next(x for x in z.infolist() if x.filename.endswith("/data/5"))
    # the payload follows the 30-byte local header, whose last 4 bytes give the name and extra lengths
    name_len, extra_len = struct.unpack("<HH", bytes(data[info.header_offset + 26: info.header_offset + 30]))
    start = info.header_offset + 30 + name_len + extra_len
    data[start] ^= 0xFF
    path = tmp_path / "flipped.pth"
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"flipped\.pth is a truncated or corrupt checkpoint: .*CRC"):
        read_torch_checkpoint(path)


def test_corrupt_pickle_gives_one_clear_error(tmp_path):
    pkl = pickle.dumps({"a": 1}, protocol=2)[:-3]
    path = write_zip(tmp_path / "badpkl.pth", pkl)
    with pytest.raises(CheckpointError, match=r"badpkl\.pth"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize(
    "records, message",
    [
        ({"archive/version": b"3"}, "has no data.pkl record"),
        ({"a/data.pkl": b".", "b/data.pkl": b"."}, "has 2 data.pkl records"),
        ({"a/data.pkl": b"\x80\x02K\x01.", "a/byteorder": b"middle"}, "unknown byte order 'middle'"),
        ({"a/data.pkl": b"\x80\x02K\x01."}, "holds a int, not a state dict"),
        ({"a/data.pkl": pickle_of({"w": s("text")})}, "state dict entry 'w' is a str, not a tensor"),
        ({"a/.data/extern_modules": b"", "a/data.pkl": b"."}, "torch.package archive"),
    ],
)
def test_structurally_wrong_archives(tmp_path, records, message):
    path = tmp_path / "odd.pth"
    with zipfile.ZipFile(path, "w") as z:
        for name, data in records.items():
            z.writestr(name, data)
    with pytest.raises(CheckpointError, match=rf"odd\.pth.*{message}"):
        read_torch_checkpoint(path)


@pytest.mark.parametrize(
    "numel, offset, size, stride, nbytes, message",
    [
        (3, 0, (4,), (1,), 12, "overruns storage 0 of 3 elements"),
        (3, 2, (2,), (1,), 12, "overruns"),
        (4, 0, (2, 2), (3, 1), 16, "overruns"),  # last element at 3 + 1 = 4
        (3, 0, (3,), (1,), 10, "has 10 bytes, expected 12"),
        (3, 0, (3,), (-1,), 12, "malformed offset/size/stride"),
    ],
)
def test_tensors_outside_their_storage_are_refused(tmp_path, numel, offset, size, stride, nbytes, message):
    pkl = pickle_of({"w": tensor(storage("FloatStorage", "0", numel), offset, size, stride)})
    path = write_zip(tmp_path / "over.pth", pkl, {"0": bytes(nbytes)})
    with pytest.raises(CheckpointError, match=message):
        read_torch_checkpoint(path)


def test_one_storage_with_two_dtypes_is_refused(tmp_path):
    pkl = pickle_of({"a": tensor(storage("FloatStorage", "0", 2), 0, (2,), (1,)),
                     "b": tensor(storage("IntStorage", "0", 2), 0, (2,), (1,))})
    path = write_zip(tmp_path / "mixed.pth", pkl, {"0": bytes(8)})
    with pytest.raises(CheckpointError, match="storage 0 is used as both float32 and int32"):
        read_torch_checkpoint(path)


def test_compressed_record_is_checked_before_it_is_inflated(tmp_path):
    # A deflated record claiming far more bytes than its tensor needs is refused from its header alone.
    path = tmp_path / "bomb.pth"
    pkl = pickle_of({"w": tensor(storage("FloatStorage", "0", 1), 0, (1,), (1,))})
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a/data.pkl", pkl)
        z.writestr("a/data/0", bytes(50_000_000))
    assert path.stat().st_size < 200_000
    with pytest.raises(CheckpointError, match="has 50000000 bytes, expected 4"):
        read_torch_checkpoint(path)


def test_missing_storage_record(tmp_path):
    path = write_zip(tmp_path / "nodata.pth", pickle_of({"w": tensor(storage("FloatStorage", "7", 1), 0, (1,), (1,))}))
    with pytest.raises(CheckpointError, match=r"nodata\.pth: the record archive/data/7 is missing"):
        read_torch_checkpoint(path)


def test_legacy_format_is_detected():
    with pytest.raises(CheckpointError, match=r"tiny_legacy\.pth uses the legacy \(pre-1.6\) torch.save format"):
        read_torch_checkpoint(FIXTURES / "tiny_legacy.pth")


def test_not_a_checkpoint(tmp_path):
    for name, data in [("empty.pth", b""), ("text.pth", b"hello world"), ("npz.pth", b"\x93NUMPY")]:
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CheckpointError, match=rf"{name} is not a PyTorch checkpoint"):
            read_torch_checkpoint(path)


# --- name normalisation -------------------------------------------------------------------------------------

def test_normalize_weight_norm_names():
    state = {
        "parametrizations.weight.original0": 1,
        "a.b.parametrizations.weight.original0": 2,
        "a.b.parametrizations.weight.original1": 3,
        "a.b.bias": 4,
        "c.parametrizations.bias.original0": 5,  # another parametrization: untouched
        "c.weight_g": 6,
    }
    assert normalize_weight_norm_names(state) == {
        "weight_g": 1, "a.b.weight_g": 2, "a.b.weight_v": 3, "a.b.bias": 4,
        "c.parametrizations.bias.original0": 5, "c.weight_g": 6,
    }
    assert list(normalize_weight_norm_names(state))[:3] == ["weight_g", "a.b.weight_g", "a.b.weight_v"]


def test_normalize_weight_norm_names_conflict():
    with pytest.raises(ValueError, match="both 'x.weight_g' and 'x.parametrizations.weight.original0'"):
        normalize_weight_norm_names({"x.weight_g": 1, "x.parametrizations.weight.original0": 2})
