"""The training data pipeline (jaxdac.train.data): the original's items (golden fixture), determinism,
worker processes, sharding over processes, resumable iterator state, bad files, the batch transforms.

Datasets are written into tmp_path: numpy signals (tests/signals.py via tests/parity/reference_data.py),
plus espeak-ng speech and sox music where those programs are installed. The live comparison with the
original on more items (and 5 s validation excerpts) is tests/parity/test_data_parity.py.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "parity"))

import reference_data  # noqa: E402
import signals  # noqa: E402
from jaxdac.dsp import loudness, resample  # noqa: E402
from jaxdac.train.data import (  # noqa: E402
    DataConfig,
    DataError,
    DataWarning,
    TransformParams,
    load_data,
    loudness_np,
    make_transform,
    resample_np,
    shift_phase_window,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "data_items.npz"
RATE = 44100


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("clean") / "data"
    return root, reference_data.write_dataset(root)


def small_config(groups, **changes) -> DataConfig:
    values = dict(train=groups["train"], val=groups["val"], n_examples=1000, val_examples=3, batch_size=4,
                  val_batch_size=2)
    return DataConfig(**{**values, **changes})


@pytest.fixture(scope="module")
def data(dataset):
    return load_data(small_config(dataset[1]), RATE)


def same_batch(a, b) -> bool:
    return (a.step == b.step and all(np.array_equal(x, y) for x, y in zip(a.params, b.params))
            and all(np.array_equal(getattr(a, k), getattr(b, k))
                    for k in ("audio", "index", "group", "file", "offset", "salient", "ok", "valid")))


# ----------------------------------------------------------------------------------------------------
# Config


def test_config_defaults_are_base_yml():
    c = DataConfig()
    assert (c.duration, c.val_duration, c.n_examples, c.val_examples) == (0.38, 5.0, 10_000_000, 250)
    assert (c.batch_size, c.val_batch_size, c.loudness_cutoff, c.num_tries) == (72, 100, -40.0, 8)
    assert c.shuffle and c.without_replacement and c.seed == 0
    assert c.postprocess == ("VolumeNorm", "RescaleAudio", "ShiftPhase") and c.augment_prob == 0.0
    assert c.volume_norm_db == ("const", -16.0) and c.shift_phase == ("uniform", -math.pi, math.pi)


def test_config_round_trips_through_plain_values():
    c = DataConfig(train={"speech": ["/a", "/b"], "music": "/m.csv"}, val=None, volume_norm_db=-20, seed=3)
    plain = c.to_dict()
    assert plain["train"] == {"speech": ["/a", "/b"], "music": ["/m.csv"]}
    assert json.loads(json.dumps(plain)) == plain
    back = DataConfig.from_dict(plain)
    assert back == c and hash(back) == hash(c) and back.train["speech"] == ("/a", "/b")
    assert back.volume_norm_db == ("const", -20.0)
    assert DataConfig(train="/folder").train == {"data": ("/folder",)}


@pytest.mark.parametrize("changes, message", [
    ({"duration": 0}, "data.duration must be a number > 0"),
    ({"batch_size": 0}, "data.batch_size must be an integer >= 1"),
    ({"num_tries": 2.5}, "data.num_tries must be an integer"),
    ({"augment_prob": 1.5}, "data.augment_prob must be a number >= 0 and <= 1"),
    ({"seed": -1}, "data.seed must be an integer >= 0"),
    ({"postprocess": ("VolumeNorm", "LowPass")}, "unsupported transform(s) ['LowPass']"),
    ({"shift_phase": ("beta", 1, 2)}, "data.shift_phase must be a number or [kind, ...]"),
    ({"train": {"speech": []}}, "data.train.speech must be a non-empty list"),
    ({"shuffle": "yes"}, "data.shuffle must be true or false"),
])
def test_config_rejects_bad_values_in_one_line(changes, message):
    with pytest.raises(DataError) as e:
        DataConfig(**changes)
    assert message in str(e.value) and "\n" not in str(e.value)


def test_config_from_dict_names_unknown_keys():
    with pytest.raises(DataError, match=r"unknown data config key\(s\) \['folders'\]"):
        DataConfig.from_dict({"folders": {}})


# ----------------------------------------------------------------------------------------------------
# Items equal the original's (golden fixture made by scripts/make_fixtures_data.py)


def _fixture_data(root: Path, task: dict):
    folders = {g: [str(root / s) for s in v] for g, v in task["folders"].items()}
    config = DataConfig(train=folders, val=folders, n_examples=task["n_examples"], duration=task["duration"],
                        augment_prob=task["augment_prob"], shuffle=task.get("shuffle", True),
                        without_replacement=task.get("without_replacement", True), batch_size=4)
    return load_data(config, task["sample_rate"], warn=False).train


def test_items_equal_the_originals(dataset):
    root, _ = dataset
    fixture = np.load(FIXTURE)
    worst = 0.0
    for task in json.loads(str(fixture["tasks"])):
        split = _fixture_data(root, task)
        for m in json.loads(str(fixture[f"{task['name']}/meta"])):
            item = split.item(m["index"])
            where = f"{task['name']} item {m['index']}"
            assert Path(item["path"]).relative_to(root) == Path(m["path"]), where
            assert item["offset"] == m["offset"], where  # the same draws from the same RandomState
            assert item["transform_args"].keys() == m["args"].keys(), where
            for key, value in m["args"].items():  # torch stores the draws as float32
                assert np.float32(item["transform_args"][key]) == np.float32(value), (where, key)
            key = f"{task['name']}/audio/{m['index']}"
            if key in fixture:
                assert item["audio"].shape == fixture[key].shape
                worst = max(worst, float(np.abs(item["audio"] - fixture[key]).max()))
    assert worst < 1e-5, worst


def test_transformed_batch_equals_the_originals(dataset):
    root, _ = dataset
    fixture = np.load(FIXTURE)
    task = json.loads(str(fixture["tasks"]))[0]
    split = _fixture_data(root, task)
    batch = split.batch(range(4))
    transform = make_transform(DataConfig(), RATE)
    out = np.asarray(transform(batch.audio, batch.params))
    np.testing.assert_allclose(out, fixture["train/batch_out"], atol=1e-4, rtol=0)


def test_groups_are_balanced_and_files_walked_in_shuffled_order(data):
    split = data.train
    items = [split.item(i) for i in range(12)]
    assert [int(it["group"]) for it in items] == [0, 1] * 6  # item i from group i % K
    speech = split._groups[0]
    # Within a group, item idx = i // K takes file idx % n of the once-shuffled list.
    assert [int(it["file"]) for it in items[0::2]] == [int(speech.order[k % len(speech.order)]) for k in range(6)]
    assert sorted(speech.order.tolist()) == list(range(len(speech.order)))
    assert split.n_items == 2 * 1000


# ----------------------------------------------------------------------------------------------------
# Determinism, workers, sharding, state


def test_same_seed_same_examples_and_other_seeds_differ(dataset):
    groups = dataset[1]
    a = load_data(small_config(groups), RATE)
    b = load_data(small_config(groups), RATE)
    c = load_data(small_config(groups, seed=7), RATE)
    assert a.fingerprint == b.fingerprint != c.fingerprint
    for step in (0, 3):
        assert same_batch(a.train_batch(step), b.train_batch(step))
    other = [c.train_batch(step) for step in (0, 3)]
    assert not any(np.array_equal(x.audio, a.train_batch(s).audio) for x, s in zip(other, (0, 3)))
    assert not np.array_equal(c.train_batch(0).offset, a.train_batch(0).offset)
    # The validation set does not depend on the seed.
    assert same_batch(a.val_batch(0), c.val_batch(0))


def test_worker_processes_give_the_in_process_batches(data):
    with data.train_batches(0, num_workers=0) as it:
        here = [next(it) for _ in range(3)]
    with data.train_batches(0, num_workers=2) as it:
        there = [next(it) for _ in range(3)]
    assert all(same_batch(a, b) for a, b in zip(here, there))
    assert [b.step for b in there] == [0, 1, 2]
    assert all(type(b.audio) is np.ndarray for b in there)  # plain arrays, not Grain's shared memory


@pytest.mark.parametrize("processes", [2, 4])
def test_process_shards_reassemble_the_global_batch(data, processes):
    whole = data.train_batch(5)
    parts = [data.train_batch(5, p, processes) for p in range(processes)]
    assert all(p.audio.shape[0] == 4 // processes for p in parts)
    for key in ("audio", "index", "offset", "file"):
        assert np.array_equal(np.concatenate([getattr(p, key) for p in parts]), getattr(whole, key))
    assert np.array_equal(np.concatenate([p.params.value for p in parts]), whole.params.value)
    # Through the iterator too (what each host runs).
    with data.train_batches(5, process_index=processes - 1, process_count=processes) as it:
        assert same_batch(next(it), parts[-1])
    with pytest.raises(DataError, match="not divisible by the 3 processes"):
        data.train_batch(0, 0, 3)


def test_iterator_state_restores_the_exact_sequence(data):
    with data.train_batches(0) as it:
        batches = []
        for k in range(5):
            batches.append(next(it))
            if k == 1:
                state = json.loads(json.dumps(it.get_state()))  # JSON-able
    assert state == {"next_step": 2, "fingerprint": data.fingerprint}
    with data.train_batches(state=state) as fresh:
        assert all(same_batch(a, next(fresh)) for a in batches[2:])
    with data.train_batches(0) as it:  # set_state on a running iterator
        next(it)
        it.set_state(state)
        assert same_batch(next(it), batches[2])
    with pytest.warns(DataWarning, match="differ from those of the saved iterator state"):
        data.train_batches(state={**state, "fingerprint": "0" * 16}).close()
    with pytest.raises(DataError, match="not a data iterator state"):
        data.train_batches(state={"step": 2})


def test_validation_batches_are_fixed_and_padded(data):
    # 1 group x 3 items in batches of 2: the second batch has one padding row.
    assert data.val_steps == 2
    with data.val_batches() as it:
        batches = list(it)
    assert [b.step for b in batches] == [0, 1] and [b.valid.tolist() for b in batches] == [[1, 1], [1, 0]]
    assert batches[0].audio.shape == (2, 1, int(5.0 * RATE))
    assert not batches[1].audio[1].any() and not batches[1].params.mask[1].any()
    assert same_batch(batches[0], data.val_batch(0))
    assert batches[0].params.mask[:, :].all()  # val_augment_prob 1: every transform of base.yml applies


def test_without_replacement_off_and_unshuffled_orders_run(dataset):
    groups = dataset[1]
    drawn = load_data(small_config(groups, without_replacement=False), RATE)
    plain = load_data(small_config(groups, shuffle=False), RATE)
    assert plain.train._groups[0].order.tolist() == list(range(len(plain.train._groups[0].order)))
    assert {int(drawn.train.item(i)["file"]) for i in range(0, 40, 2)} <= set(range(len(drawn.train.files)))


# ----------------------------------------------------------------------------------------------------
# Bad files


def _bad_dataset(root: Path) -> Path:
    folder = root / "mixed"
    good = signals.speech_like(RATE, 1.5, 21)
    reference_data._write(folder / "good.wav", good, RATE)
    reference_data._write(folder / "point_one.wav", signals.speech_like(RATE, 0.1, 22), RATE)
    reference_data._write(folder / "silent.wav", np.zeros(RATE), RATE)
    reference_data._write(folder / "tiny.wav", good[:441], RATE)  # 0.01 s < min_duration
    reference_data._write(folder / "six.wav", np.stack([good] * 6), RATE)
    (folder / "corrupt.wav").write_bytes(np.random.default_rng(0).bytes(3000))
    (folder / "empty.flac").write_bytes(b"")
    reference_data._write(folder / "header_only.wav", good[:0], RATE)
    reference_data._write(folder / "cut.flac", good, RATE)
    blob = (folder / "cut.flac").read_bytes()
    (folder / "cut.flac").write_bytes(blob[: len(blob) // 2])
    (folder / "notes.txt").write_text("not audio")
    return folder


def test_bad_files_are_skipped_counted_and_summarised_in_one_warning(tmp_path):
    folder = _bad_dataset(tmp_path)
    with pytest.warns(DataWarning) as caught:
        data = load_data(DataConfig(train={"mixed": [str(folder)]}, val={"mixed": [str(folder / "good.wav")]},
                                    batch_size=4), RATE)
    messages = [str(w.message) for w in caught if issubclass(w.category, DataWarning)]
    assert len(messages) == 1 and "\n" not in messages[0]
    report = data.report
    assert report.counts() == {"unreadable": 1, "empty": 2, "truncated": 1, "too short": 1, "too many channels": 1}
    assert {Path(s.path).name: s.reason for s in report.skipped} == {
        "corrupt.wav": "unreadable", "empty.flac": "empty", "header_only.wav": "empty", "cut.flac": "truncated",
        "tiny.wav": "too short", "six.wav": "too many channels"}
    assert report.ignored == 1  # notes.txt
    assert "skipped 6 (2 empty, 1 too many channels, 1 too short, 1 truncated, 1 unreadable)" in messages[0]
    assert "ignored 1 non-audio file name(s)" in messages[0]
    assert len(report.lines()) == 6
    # The 0.1 s file is padded as the original pads it; the silent file is kept, and flagged.
    names = [Path(p).name for p in data.train.files]
    assert sorted(names) == ["good.wav", "point_one.wav", "silent.wav"]
    items = {Path(it["path"]).name: it for it in (data.train.item(i) for i in range(3))}
    short = items["point_one.wav"]
    assert short["offset"] == 0.0 and short["audio"].shape == (1, int(0.38 * RATE))
    assert np.abs(short["audio"][0, : int(0.1 * RATE) - 50]).max() > 0.05 and not short["audio"][0, int(0.1 * RATE):].any()
    silent = items["silent.wav"]
    assert silent["tries"] == 8 and not silent["salient"] and not silent["audio"].any()
    assert items["good.wav"]["salient"] and items["good.wav"]["ok"]
    batch = data.train.batch([int(silent["index"])])
    assert not np.asarray(data.transform(batch.audio, batch.params)).any()  # stays silent, no NaN


def test_a_file_failing_at_read_time_gives_a_silent_item_and_one_warning(tmp_path):
    folder = tmp_path / "x"
    reference_data._write(folder / "a.wav", signals.speech_like(RATE, 1.0, 1), RATE)
    reference_data._write(folder / "b.wav", signals.speech_like(RATE, 1.0, 2), RATE)
    data = load_data(DataConfig(train={"x": [str(folder)]}, val={"x": [str(folder)]}, batch_size=2), RATE)
    (folder / "a.wav").write_bytes(b"gone")
    row = data.train.files.index(str(folder / "a.wav"))
    with pytest.warns(DataWarning, match="a.wav failed while reading an excerpt"):
        items = [data.train.item(i) for i in range(2)]
    bad = [it for it in items if it["file"] == row][0]
    assert not bad["ok"] and not bad["audio"].any()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data.train.item(int(bad["index"]))  # reported once per file


@pytest.mark.parametrize("layout, message", [
    ("missing", "source {root}/nowhere does not exist"),
    ("only_bad", "source {root}/bad has no usable audio: 2 audio file(s), none usable (1 empty, 1 unreadable; e.g."),
    ("no_audio", "source {root}/text has no usable audio: no audio files"),
    ("csv_without_path", "a CSV manifest needs a 'path' column"),
])
def test_a_source_without_usable_audio_is_one_clear_error(tmp_path, layout, message):
    root = tmp_path
    good = root / "good"
    reference_data._write(good / "a.wav", signals.speech_like(RATE, 1.0, 1), RATE)
    (root / "bad").mkdir()
    (root / "bad" / "x.wav").write_bytes(b"")
    (root / "bad" / "y.wav").write_bytes(b"RIFF....")
    (root / "text").mkdir()
    (root / "text" / "readme.md").write_text("hi")
    (root / "list.csv").write_text("file\na.wav\n")
    source = {"missing": root / "nowhere", "only_bad": root / "bad", "no_audio": root / "text",
              "csv_without_path": root / "list.csv"}[layout]
    config = DataConfig(train={"speech": [str(good), str(source)]}, val={"v": [str(good)]})
    with pytest.raises(DataError) as e, warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        load_data(config, RATE)
    text = str(e.value)
    assert "\n" not in text and message.format(root=root) in text
    assert text.startswith("train group 'speech': ")
    with pytest.raises(DataError, match="no training data"):
        load_data(DataConfig(), RATE)


def test_csv_manifest_paths_resolve_against_its_folder(tmp_path):
    files = tmp_path / "set" / "files"
    for i in range(3):
        reference_data._write(files / f"{i}.wav", signals.music_like(RATE, 1.0, i), RATE)
    (tmp_path / "set" / "list.csv").write_text("path,extra\nfiles/2.wav,a\n\nfiles/0.wav,b\n" + f"{files / '1.wav'},c\n")
    data = load_data(DataConfig(train={"m": [str(tmp_path / "set" / "list.csv")]}, val=None), RATE)
    assert sorted(data.train.files + data.val.files) == sorted(str(files / f"{i}.wav") for i in range(3))


def test_holdout_validation_is_fixed_and_never_trained_on(tmp_path):
    for i in range(30):
        reference_data._write(tmp_path / "s" / f"{i:02d}.wav", signals.speech_like(8000, 0.3, i), 8000)
    reference_data._write(tmp_path / "one" / "only.wav", signals.music_like(8000, 0.5, 1), 8000)
    config = DataConfig(train={"s": [str(tmp_path / "s")], "one": [str(tmp_path / "one")]}, val=None)
    a, b = load_data(config, 8000), load_data(config.replace(seed=5), 8000)
    assert len(a.val.files) == 2 and a.report.held_out == 2  # round(5% of 30) from "s"; "one" keeps its file
    assert a.val.groups == ("s",) and not set(a.val.files) & set(a.train.files)
    assert len(a.train.files) == 29 and a.val.files == b.val.files
    assert same_batch(a.val_batch(0), b.val_batch(0))
    with pytest.raises(DataError, match="no training group has two usable files"):
        load_data(DataConfig(train={"one": [str(tmp_path / "one")]}, val=None), 8000)


# ----------------------------------------------------------------------------------------------------
# Host DSP and the batch transforms


@pytest.mark.parametrize("rate, seconds, channels", [(44100, 0.38, 1), (48000, 0.2, 2), (16000, 1.3, 2), (22050, 0.6, 5)])
def test_host_loudness_equals_jaxdac_dsp(rate, seconds, channels):
    x = np.stack([signals.mixture(rate, seconds, c) * 10 ** (-c / 10) for c in range(channels)])
    assert abs(loudness_np(x, rate) - float(loudness(x[None], rate)[0])) < 1e-3
    assert loudness_np(np.zeros((1, 1000)), rate) == -70.0


@pytest.mark.parametrize("old, new", [(48000, 44100), (16000, 44100), (22050, 44100), (44100, 24000), (32000, 16000)])
def test_host_resampling_equals_jaxdac_dsp(old, new):
    x = np.stack([signals.mixture(old, 0.4, 3), signals.noise(old, 0.4, 4)])
    ours = resample_np(x, old, new)
    theirs = np.asarray(resample(x, old, new))
    assert ours.shape == theirs.shape and np.abs(ours - theirs).max() < 2e-6


def test_transform_semantics():
    audio = np.stack([signals.speech_like(RATE, 0.38, s)[: int(0.38 * RATE)] * g for s, g in ((1, 0.1), (2, 3.0))])[:, None]
    transform = make_transform(DataConfig(), RATE)  # leaves: Identity, Identity, VolumeNorm, RescaleAudio, ShiftPhase

    def params(mask, value=(0, 0, -16.0, 0, 1.0), reached=None):
        mask = np.array(mask, bool)
        reached = mask if reached is None else np.array(reached, bool)
        return TransformParams(mask, reached, np.tile(np.array(value, np.float32), (2, 1)))

    np.testing.assert_array_equal(np.asarray(transform(audio, params([[0] * 5] * 2))), audio)
    # ShiftPhase reached (its Compose applies) but masked off: resynthesised unshifted, as audiotools does.
    resynthesised = np.asarray(transform(audio, params([[0] * 5] * 2, reached=[[0, 0, 0, 0, 1]] * 2)))
    assert not np.array_equal(resynthesised, audio)
    np.testing.assert_allclose(resynthesised, audio, atol=1e-5 * np.abs(audio).max())
    norm = np.asarray(transform(audio, params([[0, 0, 1, 0, 0]] * 2)))
    np.testing.assert_allclose(np.asarray(loudness(norm, RATE)), -16.0, atol=1e-3)
    capped = np.asarray(transform(audio, params([[0, 0, 0, 1, 0]] * 2)))
    assert np.abs(capped[1]).max() == pytest.approx(1.0) and np.array_equal(capped[0], audio[0])
    # A zero phase shift resynthesises the input; a shift keeps the magnitude spectrum.
    zero = np.asarray(transform(audio, params([[0, 0, 0, 0, 1]] * 2, (0, 0, 0, 0, 0))))
    np.testing.assert_allclose(zero, audio, atol=1e-5 * np.abs(audio).max())
    shifted = np.asarray(transform(audio, params([[0, 0, 0, 0, 1]] * 2)))
    assert np.abs(shifted - audio).max() > 0.01
    spectrum = lambda x: np.abs(np.fft.rfft(x[..., 4096:-4096], axis=-1))
    assert np.abs(spectrum(shifted) - spectrum(audio)).max() < 0.05 * spectrum(audio).max()
    assert shift_phase_window(44100) == 2048 and shift_phase_window(24000) == 1024 and shift_phase_window(16000) == 512


# ----------------------------------------------------------------------------------------------------
# Real recordings: espeak-ng speech and sox music


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        pytest.skip(f"{program} is not installed")
    return path


def test_espeak_and_sox_recordings(tmp_path):
    espeak, sox = _need("espeak-ng"), _need("sox")
    speech, music = tmp_path / "speech", tmp_path / "music"
    speech.mkdir(), music.mkdir()
    for i, text in enumerate(["The quick brown fox jumps over the lazy dog.", "Codecs compress audio into tokens."]):
        subprocess.run([espeak, "-w", str(speech / f"s{i}.wav"), text], check=True, capture_output=True)
    subprocess.run([sox, "-n", "-r", "48000", "-c", "2", str(music / "pluck.flac"), "synth", "2", "pluck", "C4"],
                   check=True, capture_output=True)
    subprocess.run([sox, "-n", "-r", "44100", str(music / "chord.wav"), "synth", "1.5", "sine", "220", "sine", "330"],
                   check=True, capture_output=True)
    data = load_data(DataConfig(train={"speech": [str(speech)], "music": [str(music)]}, val=None, batch_size=4), RATE)
    assert sf.info(str(speech / "s0.wav")).samplerate != RATE  # espeak writes 22.05 kHz: resampled
    batch = data.train_batch(0)
    assert batch.audio.shape == (4, 1, int(0.38 * RATE)) and batch.salient.all() and batch.ok.all()
    out = np.asarray(data.transform(batch.audio, batch.params))
    assert np.isfinite(out).all() and np.abs(out).max() < 2
    # VolumeNorm to -16 LUFS (RescaleAudio lowers rows it pushed past a peak of 1; ShiftPhase keeps the level).
    level = np.asarray(loudness(out, RATE))
    assert level.max() == pytest.approx(-16, abs=0.1) and (level < -15.9).all()
