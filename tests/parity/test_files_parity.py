"""Live parity of the file formats: the original writes, jaxdac reads, and the other way round."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from jaxdac.io.dacfile import DACFile, read_dac_file
from jaxdac.weights.torch_checkpoint import normalize_weight_norm_names, read_torch_checkpoint

REFERENCE = Path(__file__).resolve().parent / "reference_files.py"
META = ("chunk_length", "original_length", "channels", "sample_rate", "padding", "dac_version")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_freshly_saved_checkpoint_reads_identically(run_reference, tmp_path, seed):
    kwargs = json.loads(run_reference(REFERENCE, "checkpoint", tmp_path, seed).strip().splitlines()[-1])
    states = {}
    for group in ("weight_norm", "parametrizations"):
        expected = np.load(tmp_path / f"{group}.npz")
        ckpt = read_torch_checkpoint(tmp_path / f"{group}.pth")
        assert list(ckpt.state_dict) == list(expected.files), group
        for name in expected.files:
            got, want = ckpt.state_dict[name], expected[name]
            assert got.dtype == want.dtype and got.shape == want.shape, name
            np.testing.assert_array_equal(got, want, err_msg=name)
        assert ckpt.metadata == {"kwargs": kwargs}
        states[group] = ckpt.state_dict
    assert list(normalize_weight_norm_names(states["parametrizations"])) == list(states["weight_norm"])


def test_jaxdac_file_loads_in_the_original(run_reference, tmp_path):
    rng = np.random.default_rng(7)
    ours = DACFile(
        codes=rng.integers(0, 1024, size=(6, 9, 40)),  # 3 items x 2 channels
        chunk_length=20,
        original_length=50_000,
        input_db=rng.uniform(-30, -15, size=3).astype(np.float32),
        channels=2,
        sample_rate=32_000,
        padding=False,
    )
    path = ours.save(tmp_path / "ours.dac")
    types = json.loads(run_reference(REFERENCE, "load-dac", path, tmp_path / "seen.npz").strip().splitlines()[-1])
    seen = np.load(tmp_path / "seen.npz")
    np.testing.assert_array_equal(seen["codes"], ours.codes)
    assert seen["codes"].dtype == np.int64  # the original's DACFile.load turns codes into a LongTensor
    np.testing.assert_array_equal(seen["input_db"], ours.input_db)
    assert seen["input_db"].dtype == np.float32
    for key in META:
        assert seen[key].item() == getattr(ours, key), key
    assert types == {"chunk_length": "int", "original_length": "int", "channels": "int", "sample_rate": "int",
                     "padding": "bool", "dac_version": "str"}


@pytest.mark.parametrize("window", ["0.5", "none"])
def test_original_file_loads_in_jaxdac(run_reference, tmp_path, window):
    run_reference(REFERENCE, "compress", tmp_path / "orig.dac", tmp_path / "orig.npz", window)
    want = np.load(tmp_path / "orig.npz")
    got = read_dac_file(tmp_path / "orig.dac")
    np.testing.assert_array_equal(got.codes, want["codes"])
    np.testing.assert_array_equal(got.input_db, want["input_db"])
    for key in META:
        assert getattr(got, key) == want[key].item(), key
    assert got.padding is (window == "none") and got.channels == 2 and got.sample_rate == 48000
    # Writing what we read gives back the original's bytes: same layout, same pickle.
    again = got.save(tmp_path / "again.dac")
    assert again.read_bytes() == (tmp_path / "orig.dac").read_bytes()
