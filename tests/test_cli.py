"""The encode / decode / info commands: outputs, options, and the one-line error contract.

Runs ``main([...])`` in-process with a tiny seeded model saved as .safetensors (no network), plus a few
real ``python -m jaxdac`` runs for the exit status, the single stderr line and the compilation cache.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from jaxdac import compress, decompress, load_model
from jaxdac.cli import main
from jaxdac.io.dacfile import DACFile, read_dac_file, write_dac_file
from jaxdac.weights import convert
from model_parity import seeded_model

SRC = Path(__file__).resolve().parents[1] / "src"
WIN = "0.5"  # seconds: a few windows per test file, so the chunked path runs


@pytest.fixture(autouse=True)
def no_compilation_cache(monkeypatch):
    # In-process runs must not write into ~/.cache; the subprocess test below checks the cache.
    monkeypatch.setenv("JAXDAC_COMPILATION_CACHE", "off")


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    convert.save(seeded_model("tiny"), path)  # 4 codebooks of 64 entries, 44.1 kHz
    return path


def noise(seconds: float, sample_rate: int, channels: int, seed: int = 0) -> np.ndarray:  # [T, C]
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((int(seconds * sample_rate), channels)) * 0.1).astype(np.float32)


def run(capsys, *args) -> tuple[int, str, str]:
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_round_trip_keeps_rate_channels_and_length(tmp_path, capsys, weights):
    sf.write(tmp_path / "song.wav", noise(1.3, 48000, 2), 48000, subtype="FLOAT")
    rc, out, err = run(capsys, "encode", tmp_path / "song.wav", "--output", tmp_path / "codes", "--weights", weights,
                       "--win-duration", WIN)
    assert rc == 0, err
    assert out.split() == [str(tmp_path / "codes" / "song.dac")]  # a file input goes directly into DIR
    dac_file = read_dac_file(tmp_path / "codes" / "song.dac")
    assert (dac_file.sample_rate, dac_file.channels, dac_file.original_length) == (48000, 2, 62400)
    assert dac_file.n_codebooks == 4 and dac_file.padding  # seamless: an ordinary unchunked file

    rc, out, err = run(capsys, "decode", tmp_path / "codes" / "song.dac", "-o", tmp_path / "audio", "--weights", weights)
    assert rc == 0, err
    info = sf.info(str(tmp_path / "audio" / "song.wav"))
    assert (info.samplerate, info.channels, info.frames) == (48000, 2, 62400)
    assert (info.format, info.subtype) == ("WAV", "PCM_16")  # the original's default


def test_folders_are_searched_recursively_and_mirrored(tmp_path, capsys, weights):
    tree = tmp_path / "in"
    (tree / "sub" / "deeper").mkdir(parents=True)
    sf.write(tree / "a.wav", noise(1.0, 44100, 1), 44100)
    sf.write(tree / "sub" / "b.flac", noise(0.8, 44100, 2, seed=1), 44100)
    sf.write(tree / "sub" / "deeper" / "c.ogg", noise(0.7, 22050, 1, seed=2), 22050)
    sf.write(tree / ".hidden.wav", noise(0.5, 44100, 1), 44100)  # skipped, as are non-audio files
    (tree / "notes.txt").write_text("not audio")
    if "MP3" in sf.available_formats():
        sf.write(tree / "sub" / "d.mp3", noise(0.6, 44100, 2, seed=3), 44100)

    rc, _, err = run(capsys, "encode", tree, "--output", tmp_path / "codes", "--weights", weights, "--win-duration", WIN)
    assert rc == 0, err
    expected = {Path("a.dac"), Path("sub/b.dac"), Path("sub/deeper/c.dac")}
    if "MP3" in sf.available_formats():
        expected.add(Path("sub/d.dac"))
    assert {p.relative_to(tmp_path / "codes") for p in files_under(tmp_path / "codes")} == expected

    rc, _, err = run(capsys, "decode", tmp_path / "codes", "--output", tmp_path / "audio", "--weights", weights,
                     "--format", "flac", "--subtype", "PCM_24")
    assert rc == 0, err
    decoded = {p.relative_to(tmp_path / "audio"): p for p in files_under(tmp_path / "audio")}
    assert set(decoded) == {p.with_suffix(".flac") for p in expected}
    info = sf.info(str(decoded[Path("sub/deeper/c.flac")]))
    source = sf.info(str(tree / "sub" / "deeper" / "c.ogg"))
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("FLAC", "PCM_24", 22050, source.frames)


def test_chunking_seamless_codes_do_not_depend_on_the_window_legacy_ones_do(tmp_path, capsys, weights):
    sf.write(tmp_path / "x.wav", noise(1.6, 44100, 1), 44100)
    files = {}
    for chunking, win in (("seamless", "0.5"), ("seamless", "1.0"), ("legacy", "0.5"), ("legacy", "1.0")):
        out = tmp_path / f"{chunking}{win}"
        rc, _, err = run(capsys, "encode", tmp_path / "x.wav", "-o", out, "--weights", weights, "--win-duration", win,
                         "--chunking", chunking)
        assert rc == 0, err
        files[chunking, win] = read_dac_file(out / "x.dac")
        rc, _, err = run(capsys, "decode", out / "x.dac", "-o", out, "--weights", weights, "--win-duration", win)
        assert rc == 0, err
        assert sf.info(str(out / "x.wav")).frames == 70560
    np.testing.assert_array_equal(files["seamless", "0.5"].codes, files["seamless", "1.0"].codes)
    assert files["seamless", "0.5"].padding and not files["legacy", "0.5"].padding
    assert files["legacy", "0.5"].chunk_length != files["legacy", "1.0"].chunk_length


def test_n_quantizers_keeps_that_many_codebooks(tmp_path, capsys, weights):
    sf.write(tmp_path / "x.wav", noise(1.0, 44100, 1), 44100)
    rc, _, err = run(capsys, "encode", tmp_path / "x.wav", "-o", tmp_path, "--weights", weights, "--win-duration", WIN,
                     "--n-quantizers", 2)
    assert rc == 0, err
    full = read_dac_file(tmp_path / "x.dac")
    assert full.codes.shape[1] == 2
    rc, _, err = run(capsys, "decode", tmp_path / "x.dac", "-o", tmp_path / "out", "--weights", weights)
    assert rc == 0, err
    assert sf.info(str(tmp_path / "out" / "x.wav")).frames == 44100


def test_chunk_batch_gives_the_same_files(tmp_path, capsys, weights):
    sf.write(tmp_path / "x.wav", noise(2.1, 44100, 2), 44100)
    for n in ("1", "3"):
        rc, _, err = run(capsys, "encode", tmp_path / "x.wav", "-o", tmp_path / f"codes{n}", "--weights", weights,
                         "--win-duration", WIN, "--chunk-batch", n)
        assert rc == 0, err
        rc, _, err = run(capsys, "decode", tmp_path / f"codes{n}", "-o", tmp_path / f"audio{n}", "--weights", weights,
                         "--chunk-batch", n, "--subtype", "FLOAT")
        assert rc == 0, err
    assert (tmp_path / "codes1" / "x.dac").read_bytes() == (tmp_path / "codes3" / "x.dac").read_bytes()
    np.testing.assert_array_equal(sf.read(tmp_path / "audio1" / "x.wav")[0], sf.read(tmp_path / "audio3" / "x.wav")[0])


def test_files_equal_the_python_api_and_dtype_is_passed_on(tmp_path, capsys, weights):
    """encode/decode stream files in blocks (jaxdac.compress_file / decompress_file): the same codes and
    audio as compress / decompress on the samples in memory; --dtype reaches the chunk functions."""
    sf.write(tmp_path / "x.wav", noise(2.1, 48000, 2), 48000, subtype="FLOAT")
    model = load_model(path=weights)
    for dtype in ("float32", "bfloat16"):
        rc, _, err = run(capsys, "encode", tmp_path / "x.wav", "-o", tmp_path / dtype, "--weights", weights,
                         "--win-duration", WIN, "--dtype", dtype)
        assert rc == 0, err
        rc, _, err = run(capsys, "decode", tmp_path / dtype / "x.dac", "-o", tmp_path / dtype, "--weights", weights,
                         "--subtype", "FLOAT", "--dtype", dtype)
        assert rc == 0, err
        audio = sf.read(tmp_path / "x.wav", dtype="float32", always_2d=True)[0].T
        expected = compress(model, audio, 48000, win_duration=float(WIN), dtype=dtype)
        np.testing.assert_array_equal(read_dac_file(tmp_path / dtype / "x.dac").codes, expected.codes)
        decoded = sf.read(tmp_path / dtype / "x.wav", dtype="float32", always_2d=True)[0].T
        np.testing.assert_array_equal(decoded, decompress(model, expected, dtype=dtype)[0])


def test_info_describes_the_file(tmp_path, capsys, weights):
    sf.write(tmp_path / "long.wav", noise(1.5, 48000, 2), 48000)
    sf.write(tmp_path / "short.wav", noise(0.3, 44100, 1), 44100)
    rc, _, err = run(capsys, "encode", tmp_path / "long.wav", "-o", tmp_path / "codes", "--weights", weights,
                     "--win-duration", WIN, "--chunking", "legacy")
    assert rc == 0, err
    rc, _, err = run(capsys, "encode", tmp_path / "short.wav", "-o", tmp_path / "codes", "--weights", weights)
    assert rc == 0, err
    rc, out, err = run(capsys, "info", tmp_path / "codes" / "long.dac", tmp_path / "codes" / "short.dac")
    assert rc == 0 and err == ""
    long_block, short_block = out.split("\n\n")
    long_file = read_dac_file(tmp_path / "codes" / "long.dac")
    fields = dict(line.strip().split(":", 1) for line in long_block.splitlines()[1:])
    fields = {k: v.strip() for k, v in fields.items()}
    assert long_block.splitlines()[0] == str(tmp_path / "codes" / "long.dac")
    assert fields["model"].startswith("not recorded")
    assert fields["sample rate"].startswith("48000 Hz")
    assert fields["channels"] == "2"
    assert fields["duration"] == "1.500 s (72000 samples)"
    assert fields["codebooks"] == "4"
    assert fields["frames"] == f"{long_file.frames} per channel"
    assert fields["chunk length"] == f"{long_file.chunk_length} frames"
    assert fields["padding"].startswith("no: chunked")
    # codebooks * frames * 10 bits / duration, for each of the two channels.
    per_channel = 4 * long_file.frames * 10 / 1.5 / 1000
    assert fields["bitrate"].startswith(f"{2 * per_channel:.2f} kbit/s ({per_channel:.2f} per channel; 10 bits per code")
    assert "padding:      yes: unchunked" in short_block  # shorter than the window: coded whole
    # The codebook size the bitrate assumes is an option (the tiny model's codebooks have 64 entries).
    rc, out, _ = run(capsys, "info", tmp_path / "codes", "--codebook-size", 64)
    assert rc == 0 and f"{2 * per_channel * 0.6:.2f} kbit/s" in out and "6 bits per code" in out


# --- Errors: one line, non-zero exit, nothing written ------------------------------------------------


def _dac(path: Path, n_codebooks=4, top=63, **kw) -> Path:
    codes = np.random.default_rng(0).integers(0, top + 1, size=(kw.pop("rows", 1), n_codebooks, 20))
    values = dict(chunk_length=20, original_length=10000, input_db=np.array([-20.0], np.float32), channels=1,
                  sample_rate=44100, padding=True)
    values.update(kw)
    write_dac_file(DACFile(codes=codes, **values), path)
    return path


def _error_cases(root: Path, weights: Path):
    """(name, argv, expected text in the error line) for every error a user can cause."""
    inputs = root / "inputs"
    inputs.mkdir()
    sf.write(inputs / "good.wav", noise(0.6, 44100, 1), 44100)
    (inputs / "garbage.wav").write_bytes(b"RIFF but not really a wave file" * 4)
    sf.write(inputs / "empty.wav", np.zeros((0, 1), np.float32), 44100)
    good_dac = _dac(inputs / "good.dac")
    (inputs / "corrupt.dac").write_bytes(b"\x93NUMPY garbage garbage")
    (inputs / "truncated.dac").write_bytes(good_dac.read_bytes()[: good_dac.stat().st_size // 2])
    _dac(inputs / "more_codebooks.dac", n_codebooks=9)
    _dac(inputs / "big_codes.dac", top=1000)
    _dac(inputs / "batch.dac", rows=2, input_db=np.array([-20.0, -21.0], np.float32))
    _dac(inputs / "hires.dac", sample_rate=96000)
    (inputs / "empty_dir").mkdir()
    taken = root / "taken"
    taken.mkdir()
    (taken / "good.dac").write_bytes(b"keep me")
    (root / "a_file").write_text("not a folder")
    enc = lambda *a: ["encode", "--weights", weights, "--win-duration", WIN, *a]  # later options win
    dec = lambda *a: ["decode", "--weights", weights, *a]
    out = root / "out"
    return [
        ("missing input", enc(inputs / "good.wav", inputs / "nope.wav", "-o", out), "nope.wav: no such file"),
        ("unreadable audio", enc(inputs / "good.wav", inputs / "garbage.wav", "-o", out), "cannot read"),
        ("empty audio", enc(inputs / "empty.wav", "-o", out), "holds no audio (0 samples)"),
        ("no audio in folder", enc(inputs / "empty_dir", "-o", out), "no audio files under"),
        ("output exists", enc(inputs / "garbage.wav", inputs / "good.wav", "-o", taken), "exists (pass --overwrite"),
        ("output dir is a file", enc(inputs / "good.wav", "-o", root / "a_file" / "sub"), "is not a directory"),
        ("two inputs one output", enc(inputs / "good.wav", inputs / "good.wav", "-o", out), "would both be written"),
        ("too many quantizers", enc(inputs / "good.wav", "-o", out, "--n-quantizers", 5), "only 4 codebooks"),
        ("window too short", enc(inputs / "good.wav", "-o", out, "--win-duration", 0.2, "--chunking", "legacy"),
         "shorter than this model"),
        ("bad option", enc(inputs / "good.wav", "-o", out, "--chunk-batch", 0), "must be positive"),
        ("corrupt DAC file", dec(good_dac, inputs / "corrupt.dac", "-o", out), "not a valid DAC file"),
        ("truncated DAC file", dec(good_dac, inputs / "truncated.dac", "-o", out), "not a valid DAC file"),
        ("more codebooks", dec(good_dac, inputs / "more_codebooks.dac", "-o", out), "written by a different model"),
        ("codes out of range", dec(good_dac, inputs / "big_codes.dac", "-o", out), "written by a different model"),
        ("batched DAC file", dec(inputs / "batch.dac", "-o", out), "holds 2 items"),
        ("unsupported format", dec(good_dac, "-o", out, "--format", "nope"), "not supported"),
        ("impossible subtype", dec(good_dac, "-o", out, "--format", "flac", "--subtype", "FLOAT"), "cannot hold"),
        ("rate the format can't store", dec(good_dac, inputs / "hires.dac", "-o", out, "--format", "mp3"),
         "hires.mp3" if "MP3" in sf.available_formats() else "not supported"),
        ("decode output exists", dec(good_dac, "-o", inputs), "good.wav exists"),
        ("info of a corrupt file", ["info", good_dac, inputs / "corrupt.dac"], "not a valid DAC file"),
        ("missing weights", ["encode", inputs / "good.wav", "-o", out, "--weights", root / "nope.safetensors"],
         "no weights file"),
    ]


def test_every_user_error_is_one_line_and_writes_nothing(tmp_path, capsys, weights):
    cases = _error_cases(tmp_path, weights)
    before = {p: p.read_bytes() for p in files_under(tmp_path)}
    failures = []
    for name, argv, expected in cases:
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as e:  # argparse errors exit
            rc = e.code
        _, err = capsys.readouterr()
        lines = err.splitlines()
        ok = rc not in (0, None) and len(lines) == 1 and lines[0].startswith("jaxdac: error: ") and expected in lines[0]
        if not ok:
            failures.append(f"{name}: rc={rc} stderr={err!r}")
        after = {p: p.read_bytes() for p in files_under(tmp_path)}
        if after != before:
            failures.append(f"{name}: files changed: {set(after) ^ set(before) or 'contents'}")
    assert not failures, "\n".join(failures)
    assert not (tmp_path / "out").exists()


def test_overwrite_replaces_and_checks_all_outputs_first(tmp_path, capsys, weights):
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", noise(0.6, 44100, 1, seed=ord(name)), 44100)
    (tmp_path / "codes").mkdir()
    (tmp_path / "codes" / "b.dac").write_bytes(b"old")
    rc, _, err = run(capsys, "encode", tmp_path / "a.wav", tmp_path / "b.wav", "-o", tmp_path / "codes", "--weights",
                     weights, "--win-duration", WIN)
    assert rc == 1 and "b.dac exists" in err
    assert not (tmp_path / "codes" / "a.dac").exists()  # the conflict on b stopped a before any work
    rc, _, err = run(capsys, "encode", tmp_path / "a.wav", tmp_path / "b.wav", "-o", tmp_path / "codes", "--weights",
                     weights, "--win-duration", WIN, "--overwrite")
    assert rc == 0, err
    assert read_dac_file(tmp_path / "codes" / "b.dac").original_length == 26460
    assert sorted(p.name for p in (tmp_path / "codes").iterdir()) == ["a.dac", "b.dac"]  # no temporary files


def _jaxdac(*args, env=None, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.run([sys.executable, "-m", "jaxdac", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=300)


def test_python_m_jaxdac_errors_are_one_line(tmp_path, weights):
    (tmp_path / "broken.dac").write_bytes(b"not a DAC file")
    for args in (["decode", tmp_path / "broken.dac", "-o", tmp_path / "out", "--weights", weights],
                 ["encode", tmp_path / "missing.wav", "-o", tmp_path / "out"],
                 ["encode", "--win-duration", "soon", "x.wav", "-o", tmp_path / "out"]):
        proc = _jaxdac(*args, env={"JAXDAC_COMPILATION_CACHE": "off"})
        assert proc.returncode in (1, 2), proc
        assert proc.stderr.startswith("jaxdac: error: ") and proc.stderr.count("\n") == 1, proc.stderr
        assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert not (tmp_path / "out").exists()


def test_python_m_jaxdac_fills_the_compilation_cache(tmp_path, weights):
    sf.write(tmp_path / "x.wav", noise(0.8, 44100, 1), 44100)
    cache = tmp_path / "xla"
    proc = _jaxdac("encode", tmp_path / "x.wav", "-o", tmp_path, "--weights", weights, "--win-duration", WIN,
                   env={"JAXDAC_COMPILATION_CACHE": str(cache)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(tmp_path / "x.dac")
    assert any(p.name.startswith("jit__encode_chunks") for p in cache.iterdir())
    # Importing the library (cli included) leaves JAX's cache setting alone.
    check = "import jax, jaxdac, jaxdac.cli; assert jax.config.jax_compilation_cache_dir is None"
    env = {k: v for k, v in os.environ.items() if k not in ("JAXDAC_COMPILATION_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    env["PYTHONPATH"] = str(SRC)
    assert subprocess.run([sys.executable, "-c", check], env=env, capture_output=True).returncode == 0
