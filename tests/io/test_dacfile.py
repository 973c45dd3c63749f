"""DAC 1.0.0 files: reading the original's files safely, writing files the original can read."""

from __future__ import annotations

import io
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from jaxdac import config as configs
from jaxdac import geometry
from jaxdac.dsp.resample import resampled_length
from jaxdac.io import dacfile as dacfile_module
from jaxdac.io.dacfile import DACFile, DACFileError, read_dac_file, write_dac_file
from jaxdac.io.safe_pickle import UnsafePickleError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
META_KEYS = ("chunk_length", "original_length", "channels", "sample_rate", "padding", "dac_version")


def example(batch=2, channels=2, n_codebooks=3, frames=10, seed=0, **overrides) -> DACFile:
    rng = np.random.default_rng(seed)
    values = dict(
        codes=rng.integers(0, 1024, size=(batch * channels, n_codebooks, frames)),
        chunk_length=5,
        original_length=4321,
        input_db=rng.uniform(-30, -10, size=batch).astype(np.float32),
        channels=channels,
        sample_rate=22050,
        padding=False,
    )
    values.update(overrides)
    return DACFile(**values)


def save_raw(path: Path, artifacts) -> Path:
    """Write ``artifacts`` the way the original does (np.save of a pickled object)."""
    with open(path, "wb") as f:
        np.save(f, artifacts, allow_pickle=True)
    return path


def artifacts_of(dac_file: DACFile) -> dict:
    return {
        "codes": dac_file.codes.astype(np.uint16),
        "metadata": {"input_db": dac_file.input_db, **{k: getattr(dac_file, k) for k in META_KEYS}},
    }


class Touch:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class Eval:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return eval, (f"open({str(self.marker)!r}, 'w')",)


# --- reading the original's files --------------------------------------------------------------------------

def test_reads_the_original_file_exactly():
    expected = np.load(FIXTURES / "original_dac_expected.npz")
    f = read_dac_file(FIXTURES / "original.dac")
    assert f.codes.dtype == np.int32 and f.codes.shape == expected["codes"].shape == (4, 4, 21)
    np.testing.assert_array_equal(f.codes, expected["codes"])
    assert f.input_db.dtype == np.float32
    np.testing.assert_array_equal(f.input_db, expected["input_db"])
    for key in META_KEYS:
        assert getattr(f, key) == expected[key].item(), key
    assert (f.batch_size, f.n_codebooks, f.frames) == (2, 4, 21)
    assert DACFile.load(FIXTURES / "original.dac").codes.tolist() == f.codes.tolist()


# --- writing ------------------------------------------------------------------------------------------------

def test_round_trip(tmp_path):
    original = example()
    path = original.save(tmp_path / "x.dac")
    assert path == tmp_path / "x.dac"
    back = DACFile.load(path)
    np.testing.assert_array_equal(back.codes, original.codes)
    np.testing.assert_array_equal(back.input_db, original.input_db)
    for key in META_KEYS:
        assert getattr(back, key) == getattr(original, key)


def test_written_file_has_the_original_layout(tmp_path):
    # What the original's DACFile.load sees: np.load(...)[()] -> dict of exactly these types.
    path = example().save(tmp_path / "x.dac")
    artifacts = np.load(path, allow_pickle=True)[()]
    assert set(artifacts) == {"codes", "metadata"}
    assert artifacts["codes"].dtype == np.uint16 and artifacts["codes"].shape == (4, 3, 10)
    meta = artifacts["metadata"]
    assert list(meta) == ["input_db", "original_length", "sample_rate", "chunk_length", "channels", "padding",
                          "dac_version"]
    assert meta["input_db"].dtype == np.float32 and meta["input_db"].shape == (2,)
    assert all(type(meta[k]) is int for k in ("original_length", "sample_rate", "chunk_length", "channels"))
    assert meta["padding"] is False and meta["dac_version"] == "1.0.0"
    # and the pickle mentions nothing beyond numpy's array machinery
    raw = path.read_bytes()
    assert b"scalar" not in raw and b"jaxdac" not in raw


def test_write_refuses_to_overwrite(tmp_path):
    path = example(seed=1).save(tmp_path / "x.dac")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="x.dac already exists; pass overwrite=True"):
        example(seed=2).save(path)
    assert path.read_bytes() == before
    write_dac_file(example(seed=2), path, overwrite=True)
    assert path.read_bytes() != before
    np.testing.assert_array_equal(read_dac_file(path).codes, example(seed=2).codes)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.dac"]


@pytest.mark.parametrize("fail_at", ["fsync", "replace", "link"])
def test_failed_write_leaves_no_temporary_file(tmp_path, monkeypatch, fail_at):
    existing = tmp_path / "old.dac"
    example(seed=1).save(existing)
    before = existing.read_bytes()

    def boom(*args, **kwargs):
        raise OSError(f"simulated {fail_at} failure")

    monkeypatch.setattr(dacfile_module.os, fail_at, boom)
    if fail_at == "link":  # without hard links the writer falls back to replace: make that fail too
        monkeypatch.setattr(dacfile_module.os, "replace", boom)
    overwrite = fail_at == "replace"
    target = existing if overwrite else tmp_path / "new.dac"
    with pytest.raises(OSError, match="simulated"):
        example(seed=2).save(target, overwrite=overwrite)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.dac"]
    assert existing.read_bytes() == before


def test_write_refuses_codes_that_do_not_fit_uint16():
    with pytest.raises(DACFileError, match="codes must lie in"):
        example(codes=np.full((4, 3, 10), 70000))


# --- refusing unsafe files ----------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [Touch, Eval])
@pytest.mark.parametrize("where", ["top", "codes", "metadata", "object array"])
def test_malicious_file_is_refused_and_nothing_runs(tmp_path, make, where):
    marker = tmp_path / "pwned"
    artifacts = artifacts_of(example())
    if where == "top":
        artifacts = make(marker)
    elif where == "codes":
        artifacts["codes"] = make(marker)
    elif where == "metadata":
        artifacts["metadata"]["original_length"] = make(marker)
    else:
        artifacts["codes"] = np.array([1, make(marker)], dtype=object)
    path = save_raw(tmp_path / "evil.dac", artifacts)
    with pytest.raises(UnsafePickleError, match=r"evil\.dac: refusing to load \S+\.(system|eval)"):
        read_dac_file(path)
    assert not marker.exists()


# --- corrupt, truncated and invalid files -------------------------------------------------------------------

@pytest.mark.parametrize("keep", [5, 40, 200, 400, -1])
def test_truncated_file_gives_one_clear_error(tmp_path, keep):
    data = (FIXTURES / "original.dac").read_bytes()
    path = tmp_path / "cut.dac"
    path.write_bytes(data[:keep] if keep >= 0 else data[:-1])
    with pytest.raises(DACFileError, match=r"cut\.dac is not a valid DAC file"):
        read_dac_file(path)


def test_empty_file_says_so(tmp_path):
    (tmp_path / "empty.dac").write_bytes(b"")
    with pytest.raises(DACFileError, match=r"^\S*empty\.dac is an empty file \(0 bytes\), not a DAC file$"):
        read_dac_file(tmp_path / "empty.dac")


def test_corrupt_bytes_give_one_clear_error(tmp_path):
    data = bytearray((FIXTURES / "original.dac").read_bytes())
    rng = np.random.default_rng(0)
    failures = 0
    for trial in range(50):
        corrupt = bytearray(data)
        i = int(rng.integers(0, 250))  # header and pickle opcodes, before the raw code bytes
        corrupt[i] ^= 0xFF
        path = tmp_path / f"bad{trial}.dac"
        path.write_bytes(bytes(corrupt))
        try:
            read_dac_file(path)
        except (DACFileError, UnsafePickleError) as e:
            assert str(e).startswith(str(path)), e
            failures += 1
    assert failures > 25  # most flips break it; a flip inside a value may still give a valid file


def test_not_a_dac_file(tmp_path):
    plain = tmp_path / "plain.dac"
    np.save(open(plain, "wb"), np.zeros((2, 3), np.uint16))
    with pytest.raises(DACFileError, match=r"plain\.dac is not a valid DAC file: it holds a uint16 array"):
        read_dac_file(plain)
    for content in ("hello", "\x93NUMPX and more", "\x93N"):  # text; almost the .npy signature; too short for it
        text = tmp_path / "text.dac"
        text.write_text(content, encoding="latin-1")
        with pytest.raises(DACFileError) as e:
            read_dac_file(text)
        expected = "is not a valid DAC file: it is truncated" if content == "\x93N" else "is not a DAC file ("
        assert str(e.value).startswith(f"{text} {expected}"), e.value
        assert "NUMPY" not in str(e.value) and "magic" not in str(e.value)  # numpy's words stay out of it


def test_unsupported_version_is_refused(tmp_path):
    artifacts = artifacts_of(example())
    artifacts["metadata"]["dac_version"] = "2.0.0"
    path = save_raw(tmp_path / "v2.dac", artifacts)
    with pytest.raises(DACFileError, match=r"v2\.dac was written by DAC version '2.0.0'; this reader supports 1.0.0"):
        read_dac_file(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a["metadata"].pop("channels"), "metadata keys missing channels"),
        (lambda a: a["metadata"].update(extra=1), "metadata keys unexpected extra"),
        (lambda a: a.update(codes=a["codes"][0]), "codes must be a non-empty"),
        (lambda a: a.update(codes=a["codes"][:3]), "codes have 3 rows, not a multiple of 2 channels"),
        (lambda a: a.update(codes=a["codes"].astype(np.float32)), "codes must be integers"),
        (lambda a: a["metadata"].update(input_db=np.zeros(3, np.float32)), "input_db has 3 values for 2 items"),
        (lambda a: a["metadata"].update(channels=0), "channels must be >= 1"),
        (lambda a: a["metadata"].update(chunk_length="5"), "chunk_length must be an integer"),
        (lambda a: a["metadata"].update(sample_rate=True), "sample_rate must be an integer"),
        (lambda a: a["metadata"].update(padding=1), "padding must be a bool"),
        (lambda a: a.update(metadata=[1]), "its metadata is not a dict"),
        (lambda a: a.pop("codes"), "expected a dict with 'codes' and 'metadata'"),
    ],
)
def test_invalid_contents_are_refused(tmp_path, edit, message):
    artifacts = artifacts_of(example())
    edit(artifacts)
    path = save_raw(tmp_path / "bad.dac", artifacts)
    with pytest.raises(DACFileError, match=rf"bad\.dac is not a valid DAC file: .*{message}"):
        read_dac_file(path)


def test_numpy_scalars_in_metadata_are_accepted(tmp_path):
    # Another writer may store numpy integers; they arrive through numpy's scalar reconstructor.
    artifacts = artifacts_of(example())
    artifacts["metadata"]["original_length"] = np.int64(4321)
    artifacts["metadata"]["padding"] = np.bool_(True)
    path = save_raw(tmp_path / "np.dac", artifacts)
    f = read_dac_file(path)
    assert f.original_length == 4321 and type(f.original_length) is int and f.padding is True


def test_scalar_input_db_is_a_vector():
    f = example(batch=1, input_db=-20.0)
    assert f.input_db.shape == (1,) and f.input_db.dtype == np.float32


def test_old_numpy_pickles_are_read(tmp_path):
    # A file written by numpy 1.x names numpy.core.multiarray; emulate one with a protocol-2 pickle.
    header = io.BytesIO()  # magic, version 1.0 and the header dict of a 0-d object array
    np.lib.format.write_array_header_1_0(header, {"descr": "|O", "fortran_order": False, "shape": ()})
    payload = pickle.dumps(np.array(artifacts_of(example()), dtype=object), protocol=2)
    payload = payload.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path = tmp_path / "old.dac"
    path.write_bytes(header.getvalue() + payload)
    np.testing.assert_array_equal(read_dac_file(path).codes, example().codes)


# --- model compatibility ------------------------------------------------------------------------------------

def test_validate_for_model():
    # 22050 Hz input of 4321 samples: 8642 samples at 44.1 kHz (17 frames of 512), 4703 at 24 kHz (15 of 320).
    f = example(n_codebooks=9, frames=17, chunk_length=17, padding=True)
    f.validate_for(configs.dac_44khz)
    with pytest.raises(ValueError, match="has 9 codebooks but the model has only 4"):
        f.validate_for(configs.tiny)
    small = example(n_codebooks=2, codes=np.full((4, 2, 17), 100), chunk_length=17, padding=True)
    with pytest.raises(ValueError, match="has code 100 but the model's codebooks have 64 entries"):
        small.validate_for(configs.tiny)
    example(n_codebooks=2, codes=np.full((4, 2, 17), 63), chunk_length=17, padding=True).validate_for(configs.tiny)
    with pytest.raises(ValueError, match=r"^written by a different model: its 17 frames for 4321 samples at 22050 Hz "
                       r"fit a 44khz model \(44100 Hz, hop 512\), not this model \(24000 Hz, hop 320\), "
                       r"which makes 15$"):
        f.validate_for(configs.dac_24khz)  # 32 codebooks: enough, but another rate and hop
    example(n_codebooks=9, frames=15, chunk_length=15, padding=True).validate_for(configs.dac_24khz)


@pytest.mark.parametrize("name", ["dac_44khz", "dac_24khz", "dac_16khz"])
def test_expected_frames_follow_the_chunk_plans(name):
    """Unchunked: ceil(n / hop) frames of the model-rate length n. Chunked: the original's plan for a
    window of w samples, chunks of encoded_length(w) frames every model_output_length(w) samples."""
    config = configs.PRESETS[name]
    for length, rate in ((3, 44100), (44100 * 3 + 7, 44100), (48000 * 2, 48000), (16000, 16000)):
        n = resampled_length(length, rate, config.sample_rate)
        assert dacfile_module.expected_frames(config, length, rate, True, 0) == -(-n // config.hop_length)
        for win in (0.38, 1.0, 5.0):
            window, step = geometry.chunk_plan(config, n, win)
            if step <= 0:  # a window shorter than this model's context: no chunked file exists
                continue
            chunk = geometry.encoded_length(config, window, padded=False)
            assert dacfile_module.expected_frames(config, length, rate, False, chunk) == len(range(0, n, step)) * chunk
