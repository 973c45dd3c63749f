"""Speed of jaxdac's evaluation metrics against the original's scripts/evaluate.py, on the same 20 file pairs.

    PYTHONPATH=src:tests .venv/bin/python benchmarks/evaluate_speed.py [--pairs 20] [--rounds 2]
        [--out benchmarks/results/evaluate_speed.md]

Two sets of pairs (tests/metrics_cases.py; reconstructions are codec-like perturbations), as float WAV
files: **mixed** (speech, music, mixtures, silence-padded speech and stereo music|speech, 2-8 s, at 16, 24,
44.1 and 48 kHz: every pair its own length, rate and channel count, the worst case for compiling) and
**uniform** (5 s mono 44.1 kHz clips, like a test set of fixed-length excerpts). Each pair is scored as
scripts/evaluate.py does it, ViSQOL left out (not installable here): load both files, resample each to
22.05 and 44.1 kHz, mel / STFT / waveform / SI-SDR at both rates.

* original: tests/parity/reference_metrics.py under the reference interpreter (its get_metrics, the
  original's losses and julius), per pair, 2 torch threads, timed inside that process (loading included);
* jaxdac: :func:`jaxdac.evaluate.score_pair` on the files read by :func:`jaxdac.io.audio.read_audio`, as
  ``jaxdac evaluate`` does (padded to four lengths per octave, one compiled program per bucket and rate
  pair), in a new process per round (this file with ``--jaxdac-side``): its first pass compiles
  (reported apart), its second reuses the programs;
* ``jaxdac evaluate`` as a command, end to end (start-up, JAX import, reading, compiling, scoring,
  writing), with an empty and then a warm persistent compilation cache.

The two sides alternate for ``--rounds`` rounds, so machine load falls on both. The table is printed as
markdown and written to ``--out``, with the largest relative difference between the two sides' numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]

KINDS = ("speech", "music", "mixture", "silence_padded", "stereo")
RATES = (44100, 48000, 44100, 16000, 24000)


def make_pairs(folder: Path, count: int, uniform: bool) -> list[dict]:
    """``mixed``: 2-8 s, five kinds, four rates, mono and stereo (every pair its own length); ``uniform``:
    5 s mono 44.1 kHz excerpts of the first four kinds, like a test set of fixed-length clips."""
    import soundfile as sf

    import metrics_cases as cases

    folder.mkdir()
    (folder / "ref").mkdir()
    (folder / "rec").mkdir()
    tasks = []
    for i in range(count):
        if uniform:
            kind, rate, seconds = KINDS[i % 4], 44100, 5.0
            if kind == "silence_padded":
                seconds = 3.0  # 1 s of silence on each side: 5 s in all
        else:
            kind, rate = KINDS[i % len(KINDS)], RATES[(i // len(KINDS) + i) % len(RATES)]
            seconds = 2.0 + (i * 7 % 13) * 0.5  # 2..8 s, all different lengths
        estimate, est_rate, reference, ref_rate = cases.pair(kind, rate, seconds, 100 + i)
        name = f"{i:02d}_{kind}_{rate}.wav"
        sf.write(folder / "ref" / name, reference.T, ref_rate, subtype="FLOAT")
        sf.write(folder / "rec" / name, estimate.T, est_rate, subtype="FLOAT")
        tasks.append({"name": name, "reference": str(folder / "ref" / name),
                      "reconstruction": str(folder / "rec" / name), "seconds": reference.shape[-1] / ref_rate,
                      "channels": reference.shape[0], "rate": ref_rate})
    return tasks


def run_original(tasks_path: Path, out: Path) -> dict:
    python = os.environ.get("JAXDAC_REFERENCE_PYTHON") or str(REPO / ".venv-reference" / "bin" / "python")
    if not Path(python).exists():
        sys.exit(f"no reference interpreter at {python}: bash scripts/install_reference.sh .venv-reference")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts")])}
    subprocess.run([python, str(REPO / "tests" / "parity" / "reference_metrics.py"), str(tasks_path), str(out)],
                   check=True, env=env)
    return dict(np.load(out))


def jaxdac_side(tasks_path: str, out_path: str) -> None:
    """In a fresh process (so the first pass compiles everything): score every pair twice, writing
    ``{"first": [s per pair], "compiled": [s per pair], "values": {name: {metric: value}}}``."""
    from jaxdac.evaluate import score_pair
    from jaxdac.io.audio import read_audio

    tasks = json.loads(Path(tasks_path).read_text())
    result = {}
    for label in ("first", "compiled"):
        times, values = [], {}
        for task in tasks:
            start = time.perf_counter()
            reference, ref_rate = read_audio(task["reference"])
            estimate, est_rate = read_audio(task["reconstruction"])
            values[task["name"]], _ = score_pair(estimate, est_rate, reference, ref_rate)
            times.append(time.perf_counter() - start)
        result[label] = times
        result["values"] = values
    Path(out_path).write_text(json.dumps(result))


def run_jaxdac(tasks_path: Path, out: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO / "tests")])}
    subprocess.run([sys.executable, __file__, "--jaxdac-side", str(tasks_path), str(out)], check=True, env=env)
    return json.loads(out.read_text())


def run_command(folder: Path, cache: Path, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "JAXDAC_COMPILATION_CACHE": str(cache)}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "jaxdac", "evaluate", str(folder / "ref"), str(folder / "rec"),
                    "-o", str(out), "--overwrite"], check=True, env=env, capture_output=True)
    return time.perf_counter() - start


def measure(folder: Path, tasks: list[dict], rounds: int) -> dict:
    """Both sides on one set of pairs, alternating for ``rounds`` rounds, then the command twice."""
    from jaxdac.metrics import METRIC_NAMES

    (folder / "tasks.json").write_text(json.dumps(tasks))
    loads = [os.getloadavg()[0]]
    original, jax_times, compile_pass, reference_values, values = [], [], [], None, None
    for round_ in range(rounds):
        print(f"  round {round_ + 1}/{rounds}: original ...", flush=True)
        reference_values = run_original(folder / "tasks.json", folder / f"reference{round_}.npz")
        original.append([float(reference_values[f"{t['name']}/seconds"]) for t in tasks])
        loads.append(os.getloadavg()[0])
        print(f"  round {round_ + 1}/{rounds}: jaxdac ...", flush=True)
        side = run_jaxdac(folder / "tasks.json", folder / f"jaxdac{round_}.json")
        compile_pass.append(side["first"])
        jax_times.append(side["compiled"])
        values = side["values"]
        loads.append(os.getloadavg()[0])
    print("  jaxdac evaluate (command), empty then warm compilation cache ...", flush=True)
    command_cold = run_command(folder, folder / "xla", folder / "out")
    command_warm = run_command(folder, folder / "xla", folder / "out")
    loads.append(os.getloadavg()[0])
    worst = {m: 0.0 for m in METRIC_NAMES}
    for t in tasks:
        for m in METRIC_NAMES:
            r = float(reference_values[f"{t['name']}/{m}"])
            worst[m] = max(worst[m], abs(values[t["name"]][m] - r) / abs(r))
    return {"original": original, "jax": jax_times, "compile_pass": compile_pass, "command_cold": command_cold,
            "command_warm": command_warm, "worst": worst, "loads": loads,
            "audio_seconds": sum(t["seconds"] for t in tasks), "pairs": len(tasks)}


def rows(label: str, r: dict) -> list[str]:
    audio, n = r["audio_seconds"], r["pairs"]
    orig_after = [x for rnd in r["original"] for x in rnd[1:]]  # a process's first pair warms torch up
    orig_total = float(np.mean([sum(rnd) for rnd in r["original"]]))
    orig_mean = float(np.mean(orig_after))
    jax_flat = [x for rnd in r["jax"] for x in rnd]
    jax_mean = float(np.mean(jax_flat))
    first = [x for rnd in r["compile_pass"] for x in rnd]  # per pair, over rounds
    first_total = float(np.mean([sum(rnd) for rnd in r["compile_pass"]]))
    return [
        f"| {label} | original (torch, julius) | {orig_total:.2f} | {orig_mean:.3f} ({np.std(orig_after):.3f}) | "
        f"{orig_total / audio:.4f} | 1 |",
        f"| {label} | jaxdac, compiled | {float(np.mean([sum(rnd) for rnd in r['jax']])):.2f} | {jax_mean:.3f} "
        f"({np.std(jax_flat):.3f}) | {jax_mean * n / audio:.4f} | **{jax_mean / orig_mean:.2f}** |",
        f"| {label} | jaxdac, first pass in a new process (compiles each new program) | {first_total:.2f} | "
        f"{np.mean(first):.3f} ({np.std(first):.3f}) | {first_total / audio:.4f} | {first_total / orig_total:.2f} |",
        f"| {label} | `jaxdac evaluate`, empty compilation cache | {r['command_cold']:.2f} | | "
        f"{r['command_cold'] / audio:.4f} | {r['command_cold'] / orig_total:.2f} |",
        f"| {label} | `jaxdac evaluate`, warm compilation cache | {r['command_warm']:.2f} | | "
        f"{r['command_warm'] / audio:.4f} | {r['command_warm'] / orig_total:.2f} |",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "evaluate_speed.md")
    parser.add_argument("--jaxdac-side", nargs=2, metavar=("TASKS_JSON", "OUT_JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.jaxdac_side:
        jaxdac_side(*args.jaxdac_side)
        return

    from jaxdac.metrics import METRIC_NAMES

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for label, uniform in (("mixed", False), ("uniform", True)):
            print(f"{label} pairs:", flush=True)
            folder = Path(tmp) / label
            results[label] = measure(folder, make_pairs(folder, args.pairs, uniform), args.rounds)

    loads = [x for r in results.values() for x in r["loads"]]
    mixed, uniform = results["mixed"], results["uniform"]
    lines = [
        "# Evaluation metrics: jaxdac vs the original (scripts/evaluate.py)",
        "",
        f"Two sets of {args.pairs} float WAV pairs. **mixed**: {mixed['audio_seconds']:.1f} s of audio, 2-8 s "
        "per pair, speech / music / mixtures / silence-padded speech / stereo at 16, 24, 44.1 and 48 kHz, "
        f"every pair its own length (the worst case for compiling). **uniform**: {uniform['audio_seconds']:.1f} "
        "s, 5 s mono 44.1 kHz clips (a test set of fixed-length excerpts, like the original's 10 s test items). "
        "Per pair: read both files, resample each to 22.05 and 44.1 kHz, mel / STFT / waveform / SI-SDR at both "
        f"rates (ViSQOL left out on both sides). {args.rounds} rounds per set, the sides alternating. Machine: "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with other jobs, load "
        f"average {min(loads):.1f}-{max(loads):.1f}; the original with 2 torch threads.",
        "",
        "| pairs | side | all pairs, s | per pair, s: mean (std) | s per s of audio | ratio to the original |",
        "|---|---|---:|---:|---:|---:|",
        *rows("mixed", mixed),
        *rows("uniform", uniform),
        "",
        "Per-pair means leave out each process's first pair (the original's first pair warms up librosa and "
        "julius: " + ", ".join(f"{rnd[0]:.2f}" for r in results.values() for rnd in r["original"]) + " s); totals "
        "include it. jaxdac's per-pair time is `jaxdac.evaluate.score_pair` on the files read by `read_audio` "
        "(padded to four lengths per octave: one compiled program per bucket, channel count and rate pair), in "
        "a new process per round: its first pass compiles, its second is the compiled row. "
        "The command rows are `jaxdac evaluate REF REC -o OUT` end to end: process start-up, importing JAX, "
        "compiling or loading from the persistent cache, scoring, writing the CSV, JSON and plot. Ratios of the "
        "first pass and the command are to the original's total.",
        "",
        "Largest relative difference between the two sides' numbers, over both sets:",
        "",
        "| " + " | ".join(METRIC_NAMES) + " |",
        "|" + "---:|" * len(METRIC_NAMES),
        "| " + " | ".join(f"{max(r['worst'][m] for r in results.values()):.1e}" for m in METRIC_NAMES) + " |",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
