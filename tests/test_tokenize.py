"""jaxdac.tokenize and ``jaxdac encode`` on corpora: packed coding equals whole-file coding at any length,
with a bounded number of compilations; the files equal ``compress_file``'s; npy and shards outputs with
their index; bad files; kill and resume; 8 devices and 2 processes give the files of one.

Lengths are swept on the model (every frame count up to 8, then some spanning several rows, each with
1 sample, half a hop and a whole hop in its last frame) for the geometry of all four released
configurations in tiny variants; the corpus tests use the tiny 44.1 kHz model and a folder of 13 files.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

import signals
from jaxdac import geometry, inference, tokenize
from jaxdac.cli import main
from jaxdac.config import PRESETS
from jaxdac.io.dacfile import read_dac_file, write_dac_file
from jaxdac.nn import DAC
from jaxdac.weights import convert
from model_parity import seeded_geometry_models, seeded_model

SRC = Path(__file__).resolve().parents[1] / "src"
ROW_FRAMES = 32  # the shortest row: twice the encoder's 8 + 8 frames of context
# Frame counts swept (one compilation of the whole-file reference each): the shortest ones, the context
# (8 frames), a row's length (32) and more than three rows.
FRAMES = [1, 2, 3, 5, 8, 9, 17, 33, 100]
FRAMES_SHORT = [1, 9, 77]
WIN = "0.4"  # seconds per row in the corpus tests (35 frames of the 44.1 kHz model)


@pytest.fixture(scope="module")
def models():
    """The two stride families seeded as in the fixtures, and tiny variants of the 24 kHz and
    44.1 kHz 16 kbps configurations (their geometry: 2,4,5,8 at 24 kHz; 2,4,8,8 with 18 codebooks)."""
    return seeded_geometry_models()


def _clips(model: DAC, frame_counts: list[int], seed: int = 0) -> list[np.ndarray]:
    """Per frame count F, three lengths: 1 sample, half a hop and a whole hop in the last frame."""
    hop, sr = model.hop_length, model.sample_rate
    rng = np.random.default_rng(seed)
    clips = []
    for frames in frame_counts:
        for last in (1, hop // 2 + 1, hop):
            n = (frames - 1) * hop + last
            make = signals.speech_like if rng.integers(2) else signals.music_like
            clips.append(make(sr, n / sr, seed=int(rng.integers(1000)))[:n].astype(np.float32))
    return clips


def _whole_file_codes(model: DAC, clips: list[np.ndarray]) -> list[np.ndarray]:
    """``model.encode`` of each clip alone: clips of one frame count share a call (zero-padded to it,
    as ``encode`` pads), so there is one compilation per frame count."""
    hop = model.hop_length
    by_frames: dict[int, list[int]] = {}
    for i, clip in enumerate(clips):
        by_frames.setdefault(-(-clip.size // hop), []).append(i)
    out = [None] * len(clips)
    for frames, members in by_frames.items():
        batch = np.zeros((len(members), 1, frames * hop), np.float32)
        for row, i in enumerate(members):
            batch[row, 0, : clips[i].size] = clips[i]
        codes = np.asarray(model.encode(jnp.asarray(batch)).codes)
        for row, i in enumerate(members):
            out[i] = codes[row]
    return out


def _packed_codes(model: DAC, clips: list[np.ndarray], rows: int = 2) -> list[np.ndarray]:
    """The tokenizer's engine on model-rate clips: rows of ROW_FRAMES frames, clips cut where longer."""
    engine = tokenize._Engine(model, win_duration=ROW_FRAMES * model.hop_length / model.sample_rate, rows=rows,
                              n_quantizers=None, dtype="float32")
    hop = model.hop_length
    items = [tokenize._Clip(k, str(k), None, clip[None], -(-clip.size // hop)) for k, clip in enumerate(clips)]
    out = [None] * len(clips)
    for clip, codes in engine.run(items):
        out[clip.key] = codes[0]
    return out


@pytest.mark.parametrize("case", ["tiny", "tiny_16khz", "tiny_24khz", "tiny_44khz_16kbps"])
def test_packed_codes_equal_whole_file_encode_at_every_length(models, case):
    model = models[case]
    clips = _clips(model, FRAMES if case in ("tiny", "tiny_16khz") else FRAMES_SHORT)
    jax.clear_caches()
    inference.TRACES.clear()
    packed = _packed_codes(model, clips)
    # One program for every length: the packed encode was traced once.
    encode_traces = {k: v for k, v in inference.TRACES.items() if k[0] == "encode"}
    assert list(encode_traces.values()) == [1], encode_traces
    whole = _whole_file_codes(model, clips)
    mismatched = sum(int(np.sum(a != b)) for a, b in zip(packed, whole))
    assert [a.shape for a in packed] == [b.shape for b in whole]
    print(f"\n{case}: {len(clips)} clips of 1 to {max(c.size for c in clips)} samples, "
          f"{sum(a.size for a in whole)} codes, {mismatched} differ from whole-file encode")
    assert mismatched == 0


@pytest.mark.parametrize("case", ["tiny", "tiny_16khz"])
def test_packed_decoding_equals_whole_file_decode(models, case):
    """The decoder with ``pieces``: latents of several lengths packed in rows decode, each, to the audio
    of decoding it alone (float rounding of other shapes apart)."""
    model = models[case]
    hop, gap = model.hop_length, geometry.packing_gap(model.config, decoder=True)
    rng = np.random.default_rng(1)
    latents = [rng.standard_normal((model.latent_dim, frames)).astype(np.float32) for frames in (1, 11, 40)]
    row_frames, rows = 64, []
    for i, z in enumerate(latents):  # sequential packing, the decoder's gap between neighbours
        if not rows or rows[-1][-1][1] + latents[rows[-1][-1][0]].shape[1] + gap + z.shape[1] > row_frames:
            rows.append([])
        offset = rows[-1][-1][1] + latents[rows[-1][-1][0]].shape[1] + gap if rows[-1] else 0
        rows[-1].append((i, offset))
    batch = np.zeros((len(rows), row_frames, model.latent_dim), np.float32)
    pieces = np.zeros((len(rows), 4, 2), np.int32)
    for r, members in enumerate(rows):
        for k, (i, offset) in enumerate(members):
            batch[r, offset : offset + latents[i].shape[1]] = latents[i].T
            pieces[r, k] = (offset, latents[i].shape[1])
    decoded = np.asarray(model.decode_latent(jnp.asarray(batch), True, jnp.asarray(pieces)))[..., 0]
    worst = 0.0
    for r, members in enumerate(rows):
        for i, offset in members:
            alone = np.asarray(model.decode(jnp.asarray(latents[i])[None]))[0, 0]
            assert alone.size == geometry.decoded_length(model.config, latents[i].shape[1])
            worst = max(worst, float(np.abs(decoded[r, offset * hop : offset * hop + alone.size] - alone).max()))
    print(f"\n{case}: worst difference from decoding alone {worst:.2e}")
    assert worst <= 1e-5


def test_packing_gap_covers_every_layers_reach():
    """Each padded layer reads its padding beyond a piece's ends; the gap must hold that at every
    layer's resolution, for all four released configurations (integer maths only)."""
    for name in ("dac_44khz", "dac_44khz_16kbps", "dac_24khz", "dac_16khz"):
        config = PRESETS[name]
        gap, scale = geometry.packing_gap(config) * config.hop_length, 1
        for conv in geometry.encoder_convs(config):
            assert gap // scale >= conv.padding, (name, conv)
            scale *= conv.stride
        gap, scale = geometry.packing_gap(config, decoder=True), 1
        for conv in geometry.decoder_convs(config):
            # A transposed conv's input i writes outputs s i - p ... s i - p + d (k - 1): one frame apart is
            # enough; a plain conv needs its padding in zeros on each side.
            need = 1 if conv.transpose else conv.padding
            assert gap * scale >= need, (name, conv)  # pieces of the 2,4,5,8 family end short: more zeros
            scale *= conv.stride if conv.transpose else 1


def _mixed_clips() -> tuple[list[np.ndarray], list[int]]:
    rates = [44100, 48000, 16000]
    seconds = [0.01, 0.37, 1.3]
    channels = [1, 2, 1]
    clips = [signals.mixture(sr, s, seed=i)[None].repeat(c, 0) * (0.5 + 0.2 * np.arange(c))[:, None]
             for i, (sr, s, c) in enumerate(zip(rates, seconds, channels))]
    return [c.astype(np.float32) for c in clips], rates


def test_compress_clips_equals_whole_file_compress_for_both_chunkings(models):
    model = models["tiny"]
    clips, rates = _mixed_clips()
    ours = tokenize.compress_clips(model, clips, rates, win_duration=float(WIN), rows=2)
    for clip, rate, dac_file in zip(clips, rates, ours):
        for chunking in ("seamless", "legacy"):  # both chunkings' whole-file path
            expected = inference.compress(model, clip, rate, win_duration=None, chunking=chunking)
            np.testing.assert_array_equal(dac_file.codes, expected.codes)
            for field in ("chunk_length", "original_length", "channels", "sample_rate", "padding"):
                assert getattr(dac_file, field) == getattr(expected, field), field
            np.testing.assert_array_equal(dac_file.input_db, expected.input_db)  # the same loudness pass


def test_compilations_stay_bounded_over_many_lengths(models):
    """Every XLA compilation in the process is counted (jax.monitoring): clips of new lengths, rates
    and channel counts already seen compile nothing more."""
    model = models["tiny"]
    clips, rates = _mixed_clips()
    jax.clear_caches()
    before = tokenize.compilations()
    tokenize.compress_clips(model, clips, rates, win_duration=float(WIN), rows=2)
    first = tokenize.compilations() - before
    rng = np.random.default_rng(5)
    more = [clip[..., : int(rng.integers(1, clip.shape[-1] + 1))] for clip in clips * 8]  # 24 new lengths
    inference.TRACES.clear()
    before = tokenize.compilations()
    tokenize.compress_clips(model, more, rates * 8, win_duration=float(WIN), rows=2)
    second = tokenize.compilations() - before
    print(f"\ncompilations: {first} for 3 clips (3 rates, mono and stereo), then {second} for 24 more lengths")
    assert first <= 30 and second == 0
    assert not inference.TRACES


# --- files and the command line -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    convert.save(seeded_model("tiny"), path)
    return path


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Clips of several rates, channel counts and lengths in a tree, and four awkward files: a corrupt
    file, an empty file, a 10 ms file and a silent file."""
    root = tmp_path_factory.mktemp("corpus") / "in"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "bad").mkdir()
    specs = [("a.wav", 44100, 1, 1.1), ("b.flac", 48000, 2, 0.7), ("sub/c.wav", 16000, 1, 0.93),
             ("sub/d.wav", 22050, 2, 0.33), ("sub/deeper/e.flac", 44100, 1, 1.6), ("f.wav", 24000, 1, 0.5),
             ("g.wav", 44100, 2, 0.8), ("h.wav", 32000, 1, 1.2), ("i.flac", 44100, 1, 0.45)]
    for i, (name, sr, channels, seconds) in enumerate(specs):
        audio = np.stack([signals.mixture(sr, seconds, seed=i + c) for c in range(channels)], axis=1)
        sf.write(root / name, audio, sr)
    (root / "bad" / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 3)
    (root / "bad" / "empty.wav").write_bytes(b"")
    sf.write(root / "bad" / "short.wav", signals.noise(44100, 0.01, seed=1), 44100)  # 10 ms: one frame
    sf.write(root / "bad" / "silent.wav", np.zeros(44100, np.float32), 44100, subtype="FLOAT")
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _sources(corpus: Path) -> list[tokenize.Source]:
    paths = sorted(p for p in corpus.rglob("*") if p.is_file())
    return [tokenize.Source(p, p.relative_to(corpus).as_posix()) for p in paths]


@pytest.fixture(scope="module")
def dac_run(tmp_path_factory, corpus, models):
    out = tmp_path_factory.mktemp("dac")
    written, skipped = [], []
    summary = tokenize.tokenize_files(models["tiny"], _sources(corpus), out, win_duration=float(WIN), rows=2,
                                      on_written=written.append, on_skipped=lambda *s: skipped.append(s))
    return out, summary, written, skipped


def test_dac_files_equal_compress_file_and_bad_files_are_reported(dac_run, corpus, models, tmp_path):
    out, summary, written, skipped = dac_run
    names = [s.name for s in _sources(corpus)]
    assert [name for name, _ in skipped] == ["bad/corrupt.wav", "bad/empty.wav"]
    assert skipped[0][1].startswith(f"cannot read {corpus / 'bad' / 'corrupt.wav'} as audio: ")
    assert skipped[1][1] == f"{corpus / 'bad' / 'empty.wav'} is an empty file (0 bytes)"
    coded = [n for n in names if n not in ("bad/corrupt.wav", "bad/empty.wav")]
    assert written == [out / Path(n).with_suffix(".dac") for n in coded]  # in input order
    assert (summary.files, summary.coded, len(summary.skipped)) == (13, 11, 2)
    for name in coded:  # the 10 ms and the silent file are coded like any other
        expected = inference.compress_file(models["tiny"], corpus / name, win_duration=float(WIN))
        write_dac_file(expected, tmp_path / "expected.dac", overwrite=True)
        assert (out / Path(name).with_suffix(".dac")).read_bytes() == (tmp_path / "expected.dac").read_bytes(), name
    assert read_dac_file(out / "bad" / "short.dac").frames == 1


def test_npy_and_shards_hold_the_same_codes_with_an_index(dac_run, corpus, models, tmp_path):
    out, _, _, _ = dac_run
    sources = _sources(corpus)
    tokenize.tokenize_files(models["tiny"], sources, tmp_path / "npy", format="npy", win_duration=float(WIN))
    written = []
    summary = tokenize.tokenize_files(models["tiny"], sources, tmp_path / "shards", format="shards",
                                      win_duration=float(WIN), shard_size=1500, on_written=written.append)
    tokens = tokenize.open_tokens(tmp_path / "shards")
    manifest = tokens.manifest
    assert len(manifest["shards"]) > 3 and written[-2:] == [tmp_path / "shards" / "index.npy",
                                                          tmp_path / "shards" / "manifest.json"]
    assert manifest["files"] == summary.coded == 11 and manifest["n_codebooks"] == 4
    assert [s["path"] for s in manifest["skipped"]] == ["bad/corrupt.wav", "bad/empty.wav"]
    index = np.load(tmp_path / "shards" / "index.npy", mmap_mode="r")  # a plain structured array
    assert isinstance(index, np.memmap) and tokens.paths() == [s.name for s in sources if "corrupt" not in s.name
                                                                and "empty" not in s.name]
    for i, name in enumerate(tokens.paths()):
        dac_file = read_dac_file(out / Path(name).with_suffix(".dac"))
        np.testing.assert_array_equal(tokens[i], dac_file.codes)
        np.testing.assert_array_equal(np.load(tmp_path / "npy" / Path(name).with_suffix(".npy")), dac_file.codes)
        assert np.load(tmp_path / "npy" / Path(name).with_suffix(".npy")).dtype == np.uint16
        row = index[i]
        assert (row["channels"], row["frames"], row["sample_rate"], row["original_length"]) == (
            dac_file.channels, dac_file.frames, dac_file.sample_rate, dac_file.original_length)
        assert row["input_db"] == dac_file.input_db[0]
        shard = np.load(tmp_path / "shards" / manifest["shards"][row["shard"]], mmap_mode="r")
        assert shard.dtype == np.uint16 and shard.ndim == 1


# The command line: a reference run in this process, then the same corpus killed and resumed, on 8
# devices, and in 2 processes, each compared file for file.
SHARD_MB = "0.001"  # about 1.5 s of audio per shard: 7 shards


def _encode_args(corpus: Path, out: Path, weights: Path, *extra) -> list[str]:
    return ["encode", str(corpus), "-o", str(out), "--weights", str(weights), "--format", "shards", "--win-duration",
            WIN, "--shard-size", SHARD_MB, *map(str, extra)]


def _jaxdac(args, env=None, **kwargs) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "jaxdac", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, corpus, weights):
    """``jaxdac encode --format shards`` in this process, with the progress bar and summary of a terminal."""
    out = tmp_path_factory.mktemp("cli") / "one"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("jaxdac.cli._interactive", lambda: True)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(_encode_args(corpus, out, weights))
    return out, rc, err.getvalue()


def test_the_command_shows_one_bar_and_a_summary(reference_run):
    out, rc, err = reference_run
    assert rc == 1  # two files skipped
    lines = [line for line in err.replace("\r", "\n").splitlines() if line.strip()]
    assert any(line.startswith("tokenize: 100%") and "s of audio" in line and "11/11 clips" in line for line in lines)
    assert lines[-2].startswith("jaxdac: tokenized 11 of 13 files (0.00") and "compilations; 2 skipped" in lines[-2]
    assert lines[-1] == "jaxdac: error: 2 of 13 audio files skipped (listed above); 11 written"
    assert sum(line.startswith("jaxdac: skipped: ") for line in lines) == 2
    assert len(json.loads((out / "manifest.json").read_text())["shards"]) >= 6


def test_a_killed_run_resumed_gives_the_files_of_an_uninterrupted_one(reference_run, corpus, weights, tmp_path):
    out = tmp_path / "killed"
    proc = _jaxdac(_encode_args(corpus, out, weights, "--chunk-batch", 1, "--workers", 1))
    deadline = time.monotonic() + 300
    while not list((out / "shards").glob("codes-*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    done = len(list((out / "shards").glob("codes-*.json")))
    total = len(json.loads((reference_run[0] / "manifest.json").read_text())["shards"])
    assert 1 <= done < total and not (out / "manifest.json").exists(), "the run was not killed half way"
    rc = main(_encode_args(corpus, out, weights, "--resume"))
    assert rc == 1
    assert _files(out) == _files(reference_run[0])
    # A finished run resumed does nothing more and says so; without --resume or --overwrite it is refused.
    assert main(_encode_args(corpus, out, weights, "--resume")) == 1
    assert _files(out) == _files(reference_run[0])
    assert main(_encode_args(corpus, out, weights)) == 1


def test_eight_devices_and_two_processes_give_the_files_of_one(reference_run, corpus, weights, tmp_path):
    eight = _jaxdac(_encode_args(corpus, tmp_path / "eight", weights, "--chunk-batch", 8),
                    env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
    out, err = eight.communicate(timeout=600)
    assert eight.returncode == 1, err[-3000:]
    assert _files(tmp_path / "eight") == _files(reference_run[0])

    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    procs = [_jaxdac(_encode_args(corpus, tmp_path / "two", weights),
                     env={"JAX_COORDINATOR_ADDRESS": f"localhost:{port}", "JAX_NUM_PROCESSES": "2",
                          "JAX_PROCESS_ID": str(rank)}) for rank in (0, 1)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [1, 0], [e[-3000:] for _, e in outputs]
    shards = [[line for line in o.split() if "/shards/" in line] for o, _ in outputs]
    assert all(shards) and not set(shards[0]) & set(shards[1])  # each process wrote its own shards
    assert _files(tmp_path / "two") == _files(reference_run[0])
