"""Tokenizing a folder of clips, jaxdac vs the original, whole commands side by side in one run.

    .venv/bin/python benchmarks/tokenize_corpus.py [--clips 200] [--min-seconds 0.5] [--max-seconds 12]
        [--case dac_44khz] [--win 5] [--threads 2] [--out-dir benchmarks/results]

The corpus: ``--clips`` clips of random lengths (uniform in [min, max] seconds), a quarter of them stereo,
at 44.1, 48, 22.05 and 16 kHz, cut from tests/signals.py mixtures (speech and music), written as WAV.
The same folder goes through both commands, each in a fresh process timed from start to exit (imports,
model loading, reading, resampling, loudness, coding and writing included):

* jaxdac: ``jaxdac encode CORPUS -o OUT --weights W.pth`` (``--win-duration --win``, rows of that many
  seconds, one per device), first with an empty compilation cache (``JAXDAC_COMPILATION_CACHE`` pointing
  at a fresh folder: "cold"), then again with the cache that run filled ("warm");
* the original: ``python -m dac encode CORPUS --output OUT --weights_path W.pth --device cpu``, its defaults
  otherwise (5 s windows: longer clips are coded in its overlapping chunks), ``OMP_NUM_THREADS=--threads``.

Both load the same seeded weights of the ``--case`` preset, written by the original's ``model.save``
(``tests/parity/reference_tokenize.py``; jaxdac reads the .pth without torch). The order is jaxdac cold,
the original, jaxdac warm, so that machine load falls on both. Reported: wall time, audio seconds per wall
second, the ratio to the original, jaxdac's compilations (its summary), the child's peak resident memory
(``os.wait4``) and the 1-minute load average before and after. The codes of clips the original codes whole
(no longer than its 5 s window) are compared with jaxdac's.

Writes ``tokenize.md`` and ``tokenize.csv`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
from common import machine, reference_python, run_child, write_results  # noqa: E402

RATES = (44100, 48000, 22050, 16000)
REFERENCE = REPO / "tests" / "parity" / "reference_tokenize.py"

# jaxdac's side: the command line itself, with its summary (compilations, audio seconds) saved as JSON.
CHILD = """
import dataclasses, json, sys
from pathlib import Path
from jaxdac import cli, tokenize
run = tokenize.tokenize_files
def tokenize_files(*args, **kwargs):
    summary = run(*args, **kwargs)
    Path(sys.argv[1]).write_text(json.dumps(dataclasses.asdict(summary)))
    return summary
tokenize.tokenize_files = tokenize_files
sys.exit(cli.main(sys.argv[2:]))
"""


def make_corpus(folder: Path, clips: int, low: float, high: float, seed: int) -> list[tuple[str, int, int, float]]:
    """Clips cut at random from one minute of a speech + music mixture per rate; ``(name, rate,
    channels, seconds)`` of each."""
    import signals
    import soundfile as sf

    rng = np.random.default_rng(seed)
    base = {sr: np.stack([signals.mixture(sr, 60.0, seed=1), signals.mixture(sr, 60.0, seed=2)]) for sr in RATES}
    folder.mkdir(parents=True)
    specs = []
    for i in range(clips):
        sr, channels, seconds = int(rng.choice(RATES)), 1 + int(rng.random() < 0.25), float(rng.uniform(low, high))
        n = int(seconds * sr)
        start = int(rng.integers(0, base[sr].shape[1] - n))
        name = f"clip_{i:04d}.wav"
        sf.write(folder / name, base[sr][:channels, start : start + n].T, sr)
        specs.append((name, sr, channels, n / sr))
    return specs


def agreement(ours: Path, theirs: Path, specs) -> str:
    """How the codes compare where the original codes whole files (clips up to its 5 s window)."""
    sys.path.insert(0, str(REPO / "src"))
    from jaxdac.io.dacfile import read_dac_file

    whole = equal = codes = differ = 0
    for name, *_ in specs:
        a = read_dac_file(ours / Path(name).with_suffix(".dac"))
        b = read_dac_file(theirs / Path(name).with_suffix(".dac"))
        if not b.padding:
            continue  # the original's overlapping chunks: another code sequence by design
        whole += 1
        same = a.codes.shape == b.codes.shape and bool((a.codes == b.codes).all())
        equal += same
        codes += b.codes.size
        differ += b.codes.size if a.codes.shape != b.codes.shape else int((a.codes != b.codes).sum())
    return (f"Codes: of the {whole} clips the original coded whole (no longer than its 5 s window), {equal} are "
            f"identical in jaxdac's files ({differ} of {codes} codes differ). The other {len(specs) - whole} the "
            "original codes in overlapping 5 s chunks, a different code sequence by design (jaxdac's "
            "`--chunking legacy` writes those, file by file).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clips", type=int, default=200)
    parser.add_argument("--min-seconds", type=float, default=0.5)
    parser.add_argument("--max-seconds", type=float, default=12.0)
    parser.add_argument("--case", default="dac_44khz", help="preset of the seeded weights")
    parser.add_argument("--win", type=float, default=5.0, help="jaxdac's --win-duration (seconds per row)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sides", nargs="+", default=["jaxdac-cold", "original", "jaxdac-warm"])
    parser.add_argument("--timeout", type=float, default=4 * 3600)
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    python_ref = str(reference_python())
    work = Path(tempfile.mkdtemp(prefix="tokenize_"))
    corpus, weights, cache = work / "corpus", work / "weights.pth", work / "xla"
    specs = make_corpus(corpus, args.clips, args.min_seconds, args.max_seconds, args.seed)
    audio_s = sum(seconds for *_, seconds in specs)
    channel_s = sum(channels * seconds for _, _, channels, seconds in specs)
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), JAXDAC_COMPILATION_CACHE=str(cache),
               PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO / "tests"), str(REPO / "scripts")]))
    subprocess.run([python_ref, str(REFERENCE), "checkpoint", args.case, str(weights)], env=env, check=True)

    rows, begin = [], time.perf_counter()
    for side in args.sides:
        out, result = work / side, work / f"{side}.json"
        if side == "original":
            cmd = [python_ref, str(REFERENCE), "encode", "--result", str(result), str(corpus), "--output", str(out),
                   "--weights_path", str(weights), "--device", "cpu"]
        else:
            cmd = [sys.executable, "-c", CHILD, str(result), "encode", str(corpus), "-o", str(out), "--weights",
                   str(weights), "--win-duration", str(args.win)]
        load = os.getloadavg()[0]
        start = time.perf_counter()
        summary, peak = run_child(cmd, result, env, args.timeout)
        wall = time.perf_counter() - start
        row = {"side": side, "wall_s": wall, "audio_s_per_s": audio_s / wall, "compilations": summary.get("compilations"),
               "coded": summary.get("coded", len(specs)), "peak_rss_mib": peak, "load_before": load,
               "load_after": os.getloadavg()[0]}
        rows.append(row)
        print(json.dumps(row), flush=True)

    by = {r["side"]: r for r in rows}
    original = by.get("original")
    lines = [
        f"# Tokenizing a folder: {args.clips} clips of {args.min_seconds:g}-{args.max_seconds:g} s",
        "",
        f"{args.clips} clips ({audio_s:.0f} s of audio, {channel_s:.0f} channel-seconds; a quarter stereo; 44.1, 48, "
        f"22.05 and 16 kHz), `{args.case}` architecture with seeded weights on both sides; {machine()}, shared "
        "with other jobs (1-minute load average before / after each row). Each row is one whole command in a "
        "fresh process, timed from start to exit. jaxdac: `jaxdac encode CORPUS -o OUT --weights W.pth "
        f"--win-duration {args.win:g}` (cold: empty compilation cache; warm: the cache the cold run filled); "
        "the original: `python -m dac encode CORPUS --output OUT --weights_path W.pth --device cpu` "
        f"(OMP_NUM_THREADS={args.threads}).",
        "",
        "| command | wall (s) | audio s per s | vs original | compilations | peak RSS (MiB) | load |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"**{r['wall_s'] / original['wall_s']:.2f}**" if original and r is not original else "-"
        compilations = "-" if r["compilations"] is None else str(r["compilations"])
        lines.append(f"| {r['side']} | {r['wall_s']:.1f} | {r['audio_s_per_s']:.2f} | {ratio} | {compilations} | "
                     f"{r['peak_rss_mib']:.0f} | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    if original and "jaxdac-cold" in by:
        lines += ["", agreement(work / "jaxdac-cold", work / "original", specs)]
    lines += ["", f"Total benchmark wall time: {(time.perf_counter() - begin) / 60:.1f} min.", ""]
    write_results(args.out_dir, "tokenize", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
