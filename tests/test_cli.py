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
AUDIO_ATOL = 1e-5  # decoded audio computed in batches of different shapes: float rounding apart


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
    # Codes are integers: exactly equal. Audio from batches of another shape may come from other XLA
    # kernels: equal to float rounding (3.6e-7 seen on one machine), not bit for bit.
    assert (tmp_path / "codes1" / "x.dac").read_bytes() == (tmp_path / "codes3" / "x.dac").read_bytes()
    np.testing.assert_allclose(sf.read(tmp_path / "audio1" / "x.wav")[0], sf.read(tmp_path / "audio3" / "x.wav")[0],
                               atol=AUDIO_ATOL, rtol=0)


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
    _dac(inputs / "from16k.dac", original_length=6400, sample_rate=16000)  # 20 frames: the 16 kHz models' count
    (inputs / "zero.wav").write_bytes(b"")
    (inputs / "zero.dac").write_bytes(b"")
    (inputs / "text.dac").write_text("these are notes, not codes\n")
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
        ("empty audio file", enc(inputs / "good.wav", inputs / "zero.wav", "-o", out), "zero.wav is an empty file"),
        ("empty DAC file", dec(good_dac, inputs / "zero.dac", "-o", out), "zero.dac is an empty file"),
        ("not a DAC file", dec(good_dac, inputs / "text.dac", "-o", out), "text.dac is not a DAC file"),
        ("DAC file of another model", dec(good_dac, inputs / "from16k.dac", "-o", out),
         "20 frames for 6400 samples at 16000 Hz fit a 16khz model (16000 Hz, hop 320), not this model "
         "(44100 Hz, hop 512), which makes 35"),
        ("--model-type against --weights", enc(inputs / "good.wav", "-o", out, "--model-type", "16khz"),
         "--model-type 16khz does not match --weights"),
        ("--model-type 44khz against tiny weights", enc(inputs / "good.wav", "-o", out, "--model-type", "44khz"),
         "4 codebooks model, not a 44khz release (44100 Hz, hop 512, 9 or 18 codebooks)"),
        ("--model-bitrate against --weights", dec(good_dac, "-o", out, "--model-bitrate", "16kbps"),
         "not the 44khz 16kbps release"),
        ("--model-tag with --weights", enc(inputs / "good.wav", "-o", out, "--model-tag", "latest"),
         "cannot be combined with --weights"),
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
        ok = ok and "NUMPY" not in err and "magic" not in err  # numpy's words for a file that is not .npy
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
        proc = _jaxdac(*args)
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


def _one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 1 or proc.returncode == 2, proc
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("jaxdac: error: "), proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_model_mismatches_are_refused_in_one_line(tmp_path, weights):
    """A 44.1 kHz model's file does not decode with 16 kHz weights, flags that contradict --weights are
    errors, and download takes no --weights (each a real command line)."""
    weights_16k = tmp_path / "tiny16k.safetensors"
    convert.save(seeded_model("tiny_16khz"), weights_16k)
    model = load_model(path=weights)
    write_dac_file(compress(model, noise(1.0, 44100, 1).T, 44100), tmp_path / "x.dac")  # 44100 samples, 87 frames

    line = _one_error_line(_jaxdac("decode", tmp_path / "x.dac", "-o", tmp_path / "out", "--weights", weights_16k))
    assert line == (f"jaxdac: error: {tmp_path / 'x.dac'}: written by a different model: its 87 frames for 44100 "
                    "samples at 44100 Hz fit a 44khz model (44100 Hz, hop 512), not this model (16000 Hz, hop 320), "
                    "which makes 50"), line
    line = _one_error_line(_jaxdac("decode", tmp_path / "x.dac", "-o", tmp_path / "out", "--weights", weights,
                                   "--model-type", "16khz"))
    assert line.startswith("jaxdac: error: --model-type 16khz does not match --weights: ") and line.endswith(
        "holds a 44100 Hz, hop 512, 4 codebooks model, not the 16khz 8kbps release (16000 Hz, hop 320, 12 codebooks)"), line
    line = _one_error_line(_jaxdac("download", "--weights", weights))
    assert "unrecognized arguments: --weights" in line
    assert not (tmp_path / "out").exists()
    # The same checks in the Python API.
    with pytest.raises(ValueError, match="not the 16khz 8kbps release"):
        load_model("16khz", path=weights)
    with pytest.raises(ValueError, match="fit a 44khz model"):
        decompress(load_model(path=weights_16k), read_dac_file(tmp_path / "x.dac"))


def test_a_very_short_seamless_window_warns_with_the_efficient_minimum(tmp_path, capsys, weights):
    """--win-duration 0.001 (one frame) gives the same codes as the default window at many times the
    work: one warning line naming the shortest efficient window, and the run completes."""
    sf.write(tmp_path / "x.wav", noise(0.4, 44100, 1), 44100)
    proc = _jaxdac("encode", tmp_path / "x.wav", "-o", tmp_path / "short", "--weights", weights, "--win-duration",
                   "0.001")
    assert proc.returncode == 0, proc.stderr
    # Encoder context 8 + 8 frames: a 1-frame window does 17x the work; 4 x 16 frames = 0.74 s adds <= 25%.
    assert proc.stderr.splitlines() == [
        "jaxdac: warning: --win-duration 0.001 gives encoder windows of 1 frame, each with 16 frames of context: "
        "about 17.0x the work of long windows for the same result; use --win-duration 0.75 or more"], proc.stderr
    rc, _, err = run(capsys, "encode", tmp_path / "x.wav", "-o", tmp_path / "default", "--weights", weights)
    assert rc == 0 and err == ""  # the default window (5 s) is efficient: no warning
    np.testing.assert_array_equal(read_dac_file(tmp_path / "short" / "x.dac").codes,
                                  read_dac_file(tmp_path / "default" / "x.dac").codes)
    rc, _, err = run(capsys, "decode", tmp_path / "default" / "x.dac", "-o", tmp_path / "decoded", "--weights",
                     weights, "--win-duration", "0.05")
    assert rc == 0 and err.splitlines() == [
        "jaxdac: warning: --win-duration 0.05 gives decoder windows of 4 frames, each with 22 frames of context: "
        "about 6.5x the work of long windows for the same result; use --win-duration 1.03 or more"], err


def _folder_with_bad_files(root: Path) -> Path:
    tree = root / "in"
    (tree / "sub").mkdir(parents=True)
    sf.write(tree / "a.wav", noise(0.5, 44100, 1), 44100)
    sf.write(tree / "sub" / "b.wav", noise(0.4, 44100, 1, seed=1), 44100)
    (tree / "sub" / "garbage.wav").write_bytes(b"RIFF but not really a wave file" * 4)
    (tree / "zero.wav").write_bytes(b"")
    return tree


def test_a_folder_encode_skips_unreadable_files_and_finishes_the_rest(tmp_path, weights):
    tree = _folder_with_bad_files(tmp_path)
    proc = _jaxdac("encode", tree, "-o", tmp_path / "codes", "--weights", weights, "--win-duration", "1")
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.split() == [str(tmp_path / "codes" / "a.dac"), str(tmp_path / "codes" / "sub" / "b.dac")]
    lines = proc.stderr.splitlines()
    assert len(lines) == 3 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[0].startswith(f"jaxdac: skipped: cannot read {tree / 'sub' / 'garbage.wav'} as audio: ")
    assert lines[1] == f"jaxdac: skipped: {tree / 'zero.wav'} is an empty file (0 bytes)"
    assert lines[2] == "jaxdac: error: 2 of 4 audio files skipped (listed above); 2 written"
    assert {p.relative_to(tmp_path / "codes") for p in files_under(tmp_path / "codes")} == {
        Path("a.dac"), Path("sub/b.dac")}


def test_strict_checks_every_folder_file_before_any_work(tmp_path, capsys, weights):
    tree = _folder_with_bad_files(tmp_path)
    rc, out, err = run(capsys, "encode", tree, "-o", tmp_path / "codes", "--weights", weights, "--strict")
    lines = err.splitlines()
    assert rc == 1 and out == "" and len(lines) == 1, err
    assert lines[0].startswith(f"jaxdac: error: cannot read {tree / 'sub' / 'garbage.wav'} as audio: "), err
    assert not (tmp_path / "codes").exists()


def test_a_folder_decode_skips_bad_dac_files_and_finishes_the_rest(tmp_path, capsys, weights):
    codes = tmp_path / "codes"
    codes.mkdir()
    model = load_model(path=weights)
    write_dac_file(compress(model, noise(0.5, 44100, 1).T, 44100), codes / "good.dac")
    _dac(codes / "from16k.dac", original_length=6400, sample_rate=16000)  # another model's frame count
    (codes / "notes.dac").write_text("not codes")
    (codes / "zero.dac").write_bytes(b"")
    rc, out, err = run(capsys, "decode", codes, "-o", tmp_path / "audio", "--weights", weights)
    assert rc == 1
    assert out.split() == [str(tmp_path / "audio" / "good.wav")]
    lines = err.splitlines()
    assert lines[0].startswith(f"jaxdac: skipped: {codes / 'notes.dac'} is not a DAC file"), err
    assert lines[1] == f"jaxdac: skipped: {codes / 'zero.dac'} is an empty file (0 bytes), not a DAC file"
    assert lines[2].startswith(f"jaxdac: skipped: {codes / 'from16k.dac'}: written by a different model: ")
    assert lines[3:] == ["jaxdac: error: 3 of 4 DAC files skipped (listed above); 1 written"], err
    assert [p.name for p in files_under(tmp_path / "audio")] == ["good.wav"]
    # --strict: the first bad file stops the run before anything is decoded.
    rc, out, err = run(capsys, "decode", codes, "-o", tmp_path / "strict", "--weights", weights, "--strict")
    assert rc == 1 and out == "" and len(err.splitlines()) == 1 and "notes.dac is not a DAC file" in err
    assert not (tmp_path / "strict").exists()


# --- Start-up: the command line imports JAX only when a command runs -----------------------------------

_HEAVY = ("jax", "jaxlib", "flax", "numpy", "soundfile")


def test_help_and_option_errors_do_not_import_jax(tmp_path):
    """``jaxdac --help`` and a mistyped option answer without importing JAX (or numpy): checked through
    the console script itself with Python's import log, and through ``import jaxdac.cli``."""
    script = Path(sys.executable).with_name("jaxdac")
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    runs = [[sys.executable, "-m", "jaxdac", "--help"], [sys.executable, "-m", "jaxdac", "encode", "--bogus"]]
    if script.exists():  # the installed console script (pip install -e .)
        runs += [[str(script), "--help"], [str(script), "decode", "x.dac", "--weights"]]
    for argv in runs:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60)
        imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        assert "jaxdac.cli" in imported, (argv, proc.stderr[-2000:])
        assert not {m for m in imported if m.split(".")[0] in _HEAVY}, (argv, sorted(imported))
        assert proc.returncode == (0 if "--help" in argv else 2), proc
    check = ("import sys, jaxdac, jaxdac.cli\n"
             f"assert not [m for m in sys.modules if m.split('.')[0] in {_HEAVY!r}], sorted(sys.modules)\n"
             "assert callable(jaxdac.load_model) and 'jax' in sys.modules  # imported on first use\n")
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_package_exports_every_public_name():
    import jaxdac

    assert sorted(jaxdac.__all__) == sorted([
        "DAC", "DACFile", "DACFileError", "compress", "compress_file", "decompress", "decompress_file", "download",
        "read_dac_file", "write_dac_file", "DACConfig", "PRESETS", "CodeLookup", "ConversionError", "EncodeOutput",
        "ForwardOutput", "StreamingDecoder", "StreamingEncoder", "get_config", "load_model"])
    namespace: dict = {}
    exec("from jaxdac import *", namespace)
    assert set(jaxdac.__all__) <= set(namespace) and set(jaxdac.__all__) <= set(dir(jaxdac))
    from jaxdac.io.dacfile import DACFile as direct

    assert jaxdac.DACFile is direct and jaxdac.dsp.loudness is not None and jaxdac.geometry.delay is not None
    with pytest.raises(AttributeError):
        jaxdac.no_such_name


def test_stream_demo_writes_the_decoded_stream_and_reports_latency_and_speed(tmp_path, capsys, weights):
    """stream-demo codes a file as live pieces: its output is the model's decode of the whole-signal codes
    (to the 16-bit file's step), and it prints the measured latency and real-time factors."""
    audio = noise(0.4, 44100, 1)
    sf.write(tmp_path / "in.wav", audio, 44100, subtype="FLOAT")
    rc, out, err = run(capsys, "stream-demo", tmp_path / "in.wav", tmp_path / "out.wav", "--weights", weights,
                       "--window-frames", "2")
    assert rc == 0, err
    lines = out.splitlines()
    assert "pieces of 2 frame(s)" in lines[0]
    assert lines[1].startswith("latency: ") and "ms" in lines[1]
    assert "real-time factor" in lines[2] and "encode" in lines[2] and "decode" in lines[2]
    model = load_model(path=weights)
    x = audio.T[None]  # [1, 1, T]
    expected = np.asarray(model.decode(model.encode(x).z))[0, :, : audio.shape[0]]
    written, rate = sf.read(tmp_path / "out.wav", dtype="float32", always_2d=True)
    assert rate == 44100 and written.shape == (audio.shape[0], 1)
    np.testing.assert_allclose(written.T, np.clip(expected, -1, 1), atol=1.01 / 32768)

    rc, _, err = run(capsys, "stream-demo", tmp_path / "in.wav", tmp_path / "out.wav", "--weights", weights)
    assert rc == 1 and "exists (pass --overwrite" in err
