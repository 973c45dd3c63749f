"""Writing torch.save checkpoints without torch: read back exactly, aligned records, nothing but data."""

from __future__ import annotations

import collections
import pickletools
import zipfile

import numpy as np
import pytest

from jaxdac.weights.torch_checkpoint import read_torch_checkpoint, write_torch_checkpoint


def sample_state_dict():
    rng = np.random.default_rng(0)
    return collections.OrderedDict(
        [
            ("conv.weight_v", rng.standard_normal((4, 3, 5)).astype(np.float32)),
            ("conv.weight_g", rng.uniform(0.3, 0.8, (4, 1, 1)).astype(np.float32)),
            ("scalar", np.asarray(2.5, np.float32)),
            ("empty", np.zeros((0, 3), np.float32)),
            ("ids", np.arange(7, dtype=np.int64)),
            ("double", rng.standard_normal(3)),
        ]
    )


METADATA = {
    "kwargs": {
        "rates": [],
        "periods": [2, 3, 5],
        "bands": [[0.0, 0.1], [0.1, 0.25]],
        "sample_rate": 44100,
        "latent_dim": None,
        "quantizer_dropout": 0.5,
        "flag": True,
        "name": "dac ✓",
        "big": 2**40,
        "negative": -3,
        "pair": (1, 2),
    }
}


def test_round_trip_is_exact(tmp_path):
    sd = sample_state_dict()
    path = write_torch_checkpoint(tmp_path / "w.pth", sd, METADATA)
    back = read_torch_checkpoint(path)
    assert list(back.state_dict) == list(sd)  # order kept
    for name, value in sd.items():
        assert back.state_dict[name].dtype == value.dtype and back.state_dict[name].shape == value.shape, name
        np.testing.assert_array_equal(back.state_dict[name], value)
    assert back.metadata == METADATA


def test_layout_is_torch_save_s(tmp_path):
    # Uncompressed records under one folder, each one's data on a 64-byte boundary (torch.load's mmap
    # mode needs it), the records torch.save writes, and a pickle naming only torch's rebuild functions.
    path = write_torch_checkpoint(tmp_path / "w.pth", sample_state_dict(), METADATA)
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        names = [i.filename for i in infos]
        for info in infos:
            assert info.compress_type == zipfile.ZIP_STORED
            assert (info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)) % 64 == 0, info.filename
        pickle_bytes = archive.read("archive/data.pkl")
        assert archive.read("archive/version") == b"3\n" and archive.read("archive/byteorder") in (b"little", b"big")
    assert {"archive/data.pkl", "archive/.format_version", "archive/.storage_alignment"} <= set(names)
    assert sum(n.startswith("archive/data/") for n in names) == len(sample_state_dict())
    globals_ = {arg for op, arg, _ in pickletools.genops(pickle_bytes) if op.name == "GLOBAL"}
    allowed = {
        "collections OrderedDict", "torch._utils _rebuild_tensor_v2",
        "torch FloatStorage", "torch LongStorage", "torch DoubleStorage",
    }
    assert globals_ <= allowed, globals_ - allowed


def test_refuses_values_that_are_not_data(tmp_path):
    with pytest.raises(TypeError, match="object"):
        write_torch_checkpoint(tmp_path / "a.pth", {"x": np.zeros(2, np.float32)}, {"kwargs": {"f": object()}})
    with pytest.raises(TypeError, match="complex"):
        write_torch_checkpoint(tmp_path / "b.pth", {"x": np.zeros(2, np.complex64)})
    with pytest.raises(TypeError, match="keys must be strings"):
        write_torch_checkpoint(tmp_path / "c.pth", {"x": np.zeros(2, np.float32)}, {"kwargs": {1: 2}})
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_keeps_existing_files_unless_asked(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        write_torch_checkpoint(path, sample_state_dict())
    assert path.read_bytes() == b"precious"
    write_torch_checkpoint(path, sample_state_dict(), overwrite=True)
    assert set(read_torch_checkpoint(path).state_dict) == set(sample_state_dict())
