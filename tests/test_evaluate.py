"""``jaxdac evaluate``: pairing, the CSV / JSON / table / plot, bad input, and the --weights mode.

The command-line behaviour runs as real ``python -m jaxdac evaluate`` processes (exit status, stdout,
stderr lines); the numbers in its outputs are checked against jaxdac.metrics in this process (which
tests/test_metrics.py checks against the original). The --weights mode uses a tiny seeded model saved
as .safetensors, as tests/test_cli.py does.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import metrics_cases as cases
from jaxdac import compress, compress_file, decompress, metrics as M
from jaxdac.evaluate import bucket, pair_files
from jaxdac.io.audio import read_audio
from jaxdac.weights import convert
from model_parity import seeded_model

SRC = Path(__file__).resolve().parents[1] / "src"
SAME = 1e-5  # CSV (9 significant digits) against the same numbers computed here


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    # One compilation cache for this module's subprocesses: later runs skip compiling what earlier ones did.
    return tmp_path_factory.mktemp("xla")


def jaxdac(*args, cache=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])}
    if cache:
        env["JAXDAC_COMPILATION_CACHE"] = str(cache)
    return subprocess.run([sys.executable, "-m", "jaxdac", "evaluate", *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=600)


def one_error(proc) -> str:
    lines = proc.stderr.splitlines()
    assert proc.returncode in (1, 2), proc
    assert len(lines) == 1 and lines[0].startswith("jaxdac: error: "), proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return lines[0]


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _relative(a, b) -> float:
    if float(a) == float(b):  # infinities included: an identical pair's SI-SDR is -inf, as in the original
        return 0.0
    return abs(float(a) - float(b)) / max(abs(float(b)), 1e-12)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> Path:
    """REFERENCES ``ref`` and two RECONSTRUCTIONS folders: paired files (one by suffix), a length mismatch,
    a channel mismatch, a corrupt reference, and files without a partner on each side."""
    root = tmp_path_factory.mktemp("evaluate")
    ref, rec1, rec2 = root / "ref", root / "rec1", root / "rec2"
    for folder in (ref / "sub", rec1 / "sub", rec2 / "sub"):
        folder.mkdir(parents=True)

    def write(path, audio, rate):  # audio [C, T]; float WAV keeps the arrays exact (FLAC: 24-bit)
        sf.write(path, audio.T, rate, subtype="PCM_24" if path.suffix == ".flac" else "FLOAT")

    est, est_rate, r, rate = cases.case("speech_44k")
    write(ref / "a.wav", r, rate)
    write(rec1 / "a.wav", est, est_rate)
    write(rec2 / "a.wav", 0.5 * est + 0.5 * r, est_rate)
    est, est_rate, r, rate = cases.case("stereo_24k")
    write(ref / "sub" / "b.flac", r, rate)  # paired with sub/b.wav: same path, another suffix
    write(rec1 / "sub" / "b.wav", est, est_rate)
    write(rec2 / "sub" / "b.wav", 0.5 * est + 0.5 * r, est_rate)
    # A reconstruction at another rate: resampled from its own rate, as the original does.
    est, est_rate, r, rate = cases.pair("music", 44100, 0.3, 7, estimate_rate=22050)
    write(ref / "c.wav", r, rate)
    write(rec1 / "c.wav", est, est_rate)
    write(rec2 / "c.wav", est, est_rate)
    est, est_rate, r, rate = cases.case("music_48k")
    write(ref / "d.wav", r, rate)
    write(rec1 / "d.wav", est[:, :-100], est_rate)  # 100 samples short: the original cannot score it
    write(rec2 / "d.wav", np.concatenate([est, est]), est_rate)  # stereo against mono
    write(ref / "only_ref.wav", r, rate)
    write(rec1 / "only_rec.wav", r, rate)
    write(rec2 / "only_ref.wav", r, rate)
    (ref / "broken.wav").write_bytes(b"RIFF....WAVE not really")
    write(rec1 / "broken.wav", r, rate)
    write(rec2 / "broken.wav", r, rate)
    return root


def test_folders_csv_json_table_and_plot(folders, tmp_path, cache_dir):
    out = tmp_path / "out"
    proc = jaxdac(folders / "ref", folders / "rec1", folders / "rec2", "-o", out, "--bitrates", "3,6", cache=cache_dir)
    assert proc.returncode == 1, proc.stderr  # some pairs were skipped
    err = proc.stderr.splitlines()
    # Unpaired files are listed, each once per RECONSTRUCTIONS folder they concern.
    assert f"jaxdac: unpaired: {folders / 'ref' / 'only_ref.wav'} has no reconstruction in {folders / 'rec1'}" in err
    assert f"jaxdac: unpaired: {folders / 'rec1' / 'only_rec.wav'} has no reference in {folders / 'ref'}" in err
    assert not any("only_ref.wav has no reconstruction in " + str(folders / "rec2") in line for line in err)
    skipped = [line for line in err if line.startswith("jaxdac: skipped")]
    assert len(skipped) == 4, err  # d twice (length, channels), broken twice
    assert any("[" + str(folders / "rec1") + "]" in s and "lengths differ: reference 16800 samples at 48000 Hz, "
               "reconstruction 16700" in s for s in skipped)
    assert any("[" + str(folders / "rec2") + "]" in s and "channels differ: reference 1, reconstruction 2" in s
               for s in skipped)
    assert sum("cannot read " + str(folders / "ref" / "broken.wav") in s for s in skipped) == 2
    assert err[-1] == f"jaxdac: error: 4 of 11 pairs skipped (listed above); the other 7 are in {out / 'metrics.csv'}"
    assert "Traceback" not in proc.stderr

    rows = read_csv(out / "metrics.csv")
    both = [("a.wav", "a.wav"), ("c.wav", "c.wav"), ("sub/b.flac", "sub/b.wav")]
    assert [(r["condition"], r["reference"], r["reconstruction"]) for r in rows] == [
        (str(folders / "rec1"), ref, rec) for ref, rec in both
    ] + [(str(folders / "rec2"), ref, rec) for ref, rec in both[:2] + [("only_ref.wav", "only_ref.wav")] + both[2:]]
    assert [r["bitrate_kbps"] for r in rows] == ["3"] * 3 + ["6"] * 4
    for row in rows:
        estimate, est_rate = read_audio(folders / Path(row["condition"]).name / row["reconstruction"])
        reference, ref_rate = read_audio(folders / "ref" / row["reference"])
        assert (int(row["sample_rate"]), int(row["channels"])) == (ref_rate, reference.shape[0])
        if est_rate == ref_rate:
            expected = M.batch_metrics(estimate[None], reference[None], ref_rate)
        else:  # each side resampled from its own rate
            expected = {}
            for rate in M.EVAL_RATES:
                x, _ = M.resample_valid(estimate[None], est_rate, rate)
                y, _ = M.resample_valid(reference[None], ref_rate, rate)
                n = min(x.shape[-1], y.shape[-1])
                expected.update({f"{k}-{M.RATE_TAGS[rate]}": v
                                 for k, v in M.metrics_at_rate(x[..., :n], y[..., :n], rate).items()})
        for name in M.METRIC_NAMES:
            assert _relative(row[name], expected[name][0]) < SAME, (row["reference"], name)

    report = json.loads((out / "summary.json").read_text())
    assert report["mode"] == "folders" and report["pairs_scored"] == 7 and len(report["skipped"]) == 4
    assert report["unpaired"]["references"][str(folders / "rec1")] == ["only_ref.wav"]
    assert report["unpaired"]["reconstructions"][str(folders / "rec1")] == ["only_rec.wav"]
    assert "ViSQOL" in report["settings"]["visqol"]
    assert report["settings"]["mel"]["n_mels"] == [150, 80]  # the evaluation's settings, not training's
    for condition, kbps in zip(report["conditions"], (3.0, 6.0)):
        assert condition["bitrate_kbps"] == kbps
        for name in M.METRIC_NAMES:
            values = np.array([float(r[name]) for r in rows if r["condition"] == condition["name"]])
            s = condition["metrics"][name]
            if kbps == 6.0 and name.startswith("sisdr"):  # rec2 holds an exact copy: -inf, as the original
                assert s == {"n": 4, "mean": "-inf", "std": None, "ci95": [None, None]}
                continue
            half = M.t_quantile(0.975, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
            assert s["n"] == len(values) == (3 if kbps == 3.0 else 4) and s["mean"] == pytest.approx(values.mean(), rel=1e-6)
            assert s["std"] == pytest.approx(values.std(ddof=1), rel=1e-5)
            assert s["ci95"] == pytest.approx([values.mean() - half, values.mean() + half], rel=1e-5)

    table = proc.stdout.splitlines()
    assert table[0].startswith("| metric") and f"{folders / 'rec1'}, 3.00 kbps" in table[0]
    assert [line.split("|")[1].strip() for line in table[2:10]] == list(M.METRIC_NAMES)
    assert "95% confidence interval" in table[10] and table[-1].startswith("scored 7 pairs in ")
    assert (out / "metrics_vs_bitrate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Results are not replaced without --overwrite, before any work.
    again = jaxdac(folders / "ref", folders / "rec1", "-o", out)
    assert one_error(again) == f"jaxdac: error: {out / 'metrics.csv'} exists (pass --overwrite to replace it)"


def test_bad_command_lines_are_one_error_line(folders, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no audio here")
    out = tmp_path / "out"
    ref, rec = folders / "ref", folders / "rec1"
    cases_ = [
        ((empty, rec, "-o", out), f"no audio files under {empty}"),
        ((ref, empty, "-o", out), f"no audio files under {empty}"),
        ((ref, tmp_path / "missing", "-o", out), f"{tmp_path / 'missing'}: no such file or directory"),
        ((ref, "-o", out), "give REFERENCES and at least one RECONSTRUCTIONS folder"),
        ((ref, rec, "-o", out, "--n-quantizers", "2"), "--n-quantizers needs --weights"),
        ((ref, rec, "-o", out, "--bitrates", "3,6"), "--bitrates gives 2 values for 1 RECONSTRUCTIONS folders"),
        ((ref, rec, "-o", out, "--n-quantizers", "2,x"), "expected comma-separated positive integers"),
        ((ref, rec, "-o", out, "--weights", tmp_path / "w.safetensors"), "with --weights, give one DATA folder"),
        ((ref, "-o", out, "--weights", tmp_path / "w.safetensors"), "no such file"),
        ((ref, folders / "rec1" / "a.wav", "-o", out), "both be folders or both files"),
    ]
    for args, message in cases_:
        proc = jaxdac(*args)
        assert message in one_error(proc), (args, proc.stderr)
    # Folders that share no file: the unpaired files are listed, then one error.
    (tmp_path / "other").mkdir()
    sf.write(tmp_path / "other" / "z.wav", np.zeros(4410, np.float32), 44100)
    proc = jaxdac(ref, tmp_path / "other", "-o", out)
    assert proc.returncode == 1 and proc.stderr.splitlines()[-1] == (
        f"jaxdac: error: no file under {ref} has a reconstruction under {tmp_path / 'other'} (files are paired by "
        "their path inside the folders)")
    assert f"jaxdac: unpaired: {tmp_path / 'other' / 'z.wav'} has no reference in {ref}" in proc.stderr
    assert not out.exists()


def test_pairing_by_path_then_by_suffix():
    refs = [(Path("R") / k, k) for k in ("a.wav", "b.flac", "s/c.flac", "s/c.wav", "d.ogg", "e.wav")]
    recs = [(Path("C") / k, k) for k in ("a.wav", "b.wav", "s/c.wav", "d.wav", "d.flac", "x.wav")]
    pairs, unpaired, unused = pair_files(refs, recs)
    assert pairs == {"a.wav": Path("C/a.wav"), "b.flac": Path("C/b.wav"), "s/c.wav": Path("C/s/c.wav")}
    # s/c.flac: its stem's only reconstruction is taken by s/c.wav; d.ogg: two candidates, ambiguous.
    assert unpaired == ["s/c.flac", "d.ogg", "e.wav"] and unused == ["d.wav", "d.flac", "x.wav"]


def test_buckets_are_four_per_octave_within_a_quarter():
    sizes = {bucket(n) for n in range(5000, 40001)}
    assert all(bucket(n) >= n and bucket(n) < 1.25 * n + 1 for n in range(9, 100000, 37))
    assert len(sizes) <= 4 * 3 + 1  # 5000..40000 is three octaves


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    convert.save(seeded_model("tiny"), path)  # 4 codebooks of 64 entries, 44.1 kHz, hop 512
    return path


def test_weights_codes_and_decodes_at_each_n_quantizers(tmp_path, weights, cache_dir):
    data = tmp_path / "data"
    data.mkdir()
    est, _, mono, rate = cases.case("speech_44k")
    sf.write(data / "mono.wav", mono.T, rate, subtype="FLOAT")
    _, _, stereo, rate48 = cases.pair("stereo", 48000, 0.3, 8)
    sf.write(data / "stereo48.wav", stereo.T, rate48, subtype="FLOAT")
    sf.write(data / "short.wav", mono[:, :1500].T, rate, subtype="FLOAT")  # 34 ms: too short for the metrics
    out = tmp_path / "out"
    proc = jaxdac("--weights", weights, data, "-o", out, "--n-quantizers", "4,1", "--win-duration", "0.5",
                  cache=cache_dir)
    assert proc.returncode == 1, proc.stderr
    err = proc.stderr.splitlines()
    assert err[0] == (f"jaxdac: skipped: {data / 'short.wav'}: too short: 1500 samples at 44100 Hz (34 ms) give 750 "
                      "at 22050 Hz; the original's STFT needs at least 1025")
    assert err[-1] == f"jaxdac: error: 2 of 6 pairs skipped (listed above); the other 4 are in {out / 'metrics.csv'}"

    rows = read_csv(out / "metrics.csv")
    per_codebook = 44100 / 512 * math.log2(64) / 1000  # kbit/s per channel and codebook
    assert [(r["reference"], r["n_quantizers"]) for r in rows] == [
        (name, str(n)) for n in (1, 4) for name in ("mono.wav", "stereo48.wav")]  # ascending n_quantizers
    for row in rows:
        n = int(row["n_quantizers"])
        assert float(row["bitrate_kbps"]) == pytest.approx(n * per_codebook, rel=1e-6)
        stereo_row = row["reference"] == "stereo48.wav"
        assert (int(row["sample_rate"]), int(row["channels"])) == ((48000, 2) if stereo_row else (44100, 1))
    # The numbers of the mono file, recomputed here at the lowest and highest n_quantizers.
    model = seeded_model("tiny")
    reference, sr = read_audio(data / "mono.wav")
    full = compress_file(model, data / "mono.wav", win_duration=0.5)
    # The first n codebooks of the full codes are compress(..., n_quantizers=n)'s codes.
    assert np.array_equal(compress(model, reference[None], sr, 0.5, n_quantizers=2).codes, full.codes[:, :2])
    for n in (1, 4):
        row = next(r for r in rows if r["reference"] == "mono.wav" and r["n_quantizers"] == str(n))
        decoded = decompress(model, dataclasses.replace(full, codes=full.codes[:, :n]), win_duration=0.5)
        expected = M.batch_metrics(decoded, reference[None], sr)
        for name in M.METRIC_NAMES:
            assert _relative(row[name], expected[name][0]) < SAME, (n, name)
    report = json.loads((out / "summary.json").read_text())
    assert report["mode"] == "weights" and [c["n_quantizers"] for c in report["conditions"]] == [1, 4]
    assert "n_quantizers=1" in proc.stdout.splitlines()[0] and (out / "metrics_vs_bitrate.png").exists()

    proc = jaxdac("--weights", weights, data, "-o", tmp_path / "o2", "--n-quantizers", "5")
    assert one_error(proc) == "jaxdac: error: --n-quantizers 5: the model has only 4 codebooks"


def test_speech_metrics_and_a_missing_plotting_package(folders, tmp_path, capsys, monkeypatch):
    # In this process: the optional packages made unimportable. --speech without pesq is one error before
    # any work; without matplotlib the plot is skipped with a note and the rest is written.
    from jaxdac.cli import main

    ref, rec = folders / "ref" / "a.wav", folders / "rec1" / "a.wav"
    out = tmp_path / "out"
    monkeypatch.setitem(sys.modules, "pesq", None)
    assert main(["evaluate", str(ref), str(rec), "-o", str(out), "--speech"]) == 1
    err = capsys.readouterr().err
    assert err == ("jaxdac: error: --speech: PESQ needs the 'pesq' package, which is not installed: "
                   "pip install \"jaxdac[metrics]\"\n")
    assert not out.exists()
    monkeypatch.delitem(sys.modules, "pesq")

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    speech = pytest.importorskip("pesq") and pytest.importorskip("pystoi")
    assert speech
    assert main(["evaluate", str(ref), str(rec), "-o", str(out), "--speech"]) == 0
    captured = capsys.readouterr()
    assert "jaxdac: note: matplotlib is not installed (pip install \"jaxdac[bench]\"); skipped the plot" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["metrics.csv", "summary.json"]
    row = read_csv(out / "metrics.csv")[0]
    estimate, sr = read_audio(rec)
    reference, _ = read_audio(ref)
    x, y = (np.asarray(M.resample_valid(a[None], sr, 44100)[0]) for a in (estimate, reference))
    assert _relative(row["pesq"], M.pesq(x, y, 44100)[0]) < SAME
    assert float(row["stoi"]) == pytest.approx(float(M.stoi(x, y, 44100)[0]), rel=SAME)
    # The 0.4 s pair is too short for STOI's intermediate measure: pystoi's warning becomes a note.
    assert "jaxdac: note: " + str(rec) + ": STOI: Not enough STFT frames" in captured.err
