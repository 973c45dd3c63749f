"""Training data throughput: jaxdac's pipeline vs the original's, and vs what the training step consumes.

    .venv/bin/python benchmarks/train_data.py [--workers 0,1,2] [--batches 6] [--files 24] [--seconds 6]
        [--step-seconds S [--step-source TEXT]] [--out-dir benchmarks/results]

The dataset (tests/parity/reference_data.py::write_bulk_dataset) is written once into a temporary
folder: two groups (speech, music) of ``--files`` files of ``--seconds`` s each, WAV and FLAC, 44.1 and
48 kHz (a third of the files resampled), mono and stereo. Both sides read the same files with base.yml's
settings (0.38 s excerpts, -40 LUFS cutoff, 8 tries, batches of 72) and produce the same items.

* jaxdac: ``load_data`` (the scan of every file's header is timed apart), then
  ``Data.train_batches(num_workers=W)``: the first batch (worker start-up included) is timed apart, the
  other workers' first batches are skipped, then ``--batches`` batches are timed. Separately, the jitted batch transform (VolumeNorm, RescaleAudio, ShiftPhase,
  which the training program runs on the accelerator) on this machine's CPU, per batch.
* the original: ``AudioDataset`` + ``ConcatDataset`` as scripts/train.py builds them (reference_data.py),
  through ``torch.utils.data.DataLoader(batch_size=72, num_workers=W, collate_fn=dataset.collate)``,
  timed the same way. Its transforms run inside its training step, so they are not in its numbers.

Each measurement runs in a fresh process with one BLAS/OpenMP thread (``torch.set_num_threads(1)`` on
the original's side, as its DataLoader workers have), the two sides alternating per worker count.

What the step consumes: ``72 / step time`` examples per second. The step time is ``--step-seconds`` if
given, else read from ``benchmarks/results/train_step.csv`` (jaxdac, dac_44khz, float32: the batch-72
row, or the largest batch's time scaled to 72 examples, said so in the table), else left out.
Writes ``train_data.md`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "parity")]
BATCH = 72


def child_ours(root: Path, workers: int, batches: int, result: Path) -> None:
    import jax  # noqa: F401  (imported before the scan is timed: load_data builds the jitted transform)

    from jaxdac.train.data import DataConfig, load_data

    groups = {"speech": [str(root / "speech")], "music": [str(root / "music")]}
    start = time.perf_counter()
    data = load_data(DataConfig(train=groups, val=groups, batch_size=BATCH), 44100)
    scan = time.perf_counter() - start
    with data.train_batches(0, num_workers=workers) as it:
        start = time.perf_counter()
        next(it)
        first = time.perf_counter() - start
        for _ in range(workers - 1):  # every worker's first batch: start-up, not throughput
            next(it)
        start = time.perf_counter()
        for _ in range(batches):
            next(it)
        elapsed = time.perf_counter() - start
    result.write_text(json.dumps({"scan_s": scan, "files": len(data.train.files), "first_s": first,
                                  "examples_per_s": batches * BATCH / elapsed}))


def child_transform(root: Path, batches: int, result: Path) -> None:
    import jax

    from jaxdac.train.data import DataConfig, load_data

    groups = {"speech": [str(root / "speech")], "music": [str(root / "music")]}
    data = load_data(DataConfig(train=groups, val=groups, batch_size=BATCH), 44100)
    batch = data.train_batch(0)
    audio, params = jax.device_put((batch.audio, batch.params))
    start = time.perf_counter()
    data.transform(audio, params).block_until_ready()
    first = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(batches):
        data.transform(audio, params).block_until_ready()
    per_batch = (time.perf_counter() - start) / batches
    result.write_text(json.dumps({"first_s": first, "batch_s": per_batch, "device": str(jax.devices()[0])}))


def run(cmd: list[str], env: dict, result: Path) -> dict:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    return json.loads(result.read_text())


def step_seconds(args) -> tuple[float | None, str]:
    if args.step_seconds:
        return args.step_seconds, args.step_source or "given (--step-seconds)"
    path = REPO / "benchmarks" / "results" / "train_step.csv"
    if not path.exists():
        return None, "no benchmarks/results/train_step.csv; pass --step-seconds"
    rows = [r for r in csv.DictReader(path.open()) if r.get("side") == "jaxdac" and r.get("case") == "dac_44khz"
            and r.get("dtype") == "float32"]
    if not rows:
        return None, "train_step.csv has no jaxdac dac_44khz float32 row"
    exact = [r for r in rows if int(r["batch"]) == BATCH]
    if exact:
        return float(exact[0]["step_s"]), "train_step.csv, batch 72"
    row = max(rows, key=lambda r: int(r["batch"]))
    return float(row["step_s"]) * BATCH / int(row["batch"]), \
        f"train_step.csv batch {row['batch']} ({float(row['step_s']):.2f} s) scaled to 72 examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--files", type=int, default=24)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--step-seconds", type=float, default=None)
    parser.add_argument("--step-source", default=None, help="where --step-seconds comes from, for the table")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--child", nargs=4, metavar=("KIND", "ROOT", "WORKERS", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, root, workers, result = args.child
        if kind == "ours":
            child_ours(Path(root), int(workers), args.batches, Path(result))
        else:
            child_transform(Path(root), args.batches, Path(result))
        return

    import reference_data

    python = Path(os.environ.get("JAXDAC_REFERENCE_PYTHON", REPO / ".venv-reference" / "bin" / "python"))
    if not python.exists():
        sys.exit(f"no reference interpreter at {python}: bash scripts/install_reference.sh .venv-reference")
    threads = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    env = dict(os.environ, **threads, JAXDAC_COMPILATION_CACHE="off",
               PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "src")]))
    workers = [int(w) for w in args.workers.split(",")]
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "bulk"
        groups = reference_data.write_bulk_dataset(root, args.files, args.seconds)
        for w in workers:
            result = Path(tmp) / f"ours_{w}.json"
            ours = run([sys.executable, __file__, "--batches", str(args.batches), "--child", "ours", str(root), str(w),
                        str(result)], env, result)
            print(f"jaxdac   workers={w}: {ours['examples_per_s']:.0f} examples/s, first batch {ours['first_s']:.1f} s, "
                  f"scan {ours['scan_s']:.2f} s for {ours['files']} files", flush=True)
            task = [{"kind": "throughput", "folders": groups, "sample_rate": 44100, "duration": 0.38,
                     "n_examples": 10_000_000, "batch_size": BATCH, "batches": args.batches, "workers": [w]}]
            (Path(tmp) / "task.json").write_text(json.dumps(task))
            out = Path(tmp) / "ref.npz"
            proc = subprocess.run([str(python), str(REPO / "tests" / "parity" / "reference_data.py"),
                                   str(Path(tmp) / "task.json"), str(out)], env=env, capture_output=True, text=True,
                                  timeout=3600)
            if proc.returncode != 0:
                raise RuntimeError(f"original failed:\n{proc.stderr[-3000:]}")
            import numpy as np

            theirs = json.loads(str(np.load(out)["throughput"]))[0]
            print(f"original workers={w}: {theirs['examples_per_s']:.0f} examples/s, first batch "
                  f"{theirs['first_s']:.1f} s", flush=True)
            rows.append((w, ours, theirs))
        result = Path(tmp) / "transform.json"
        transform = run([sys.executable, __file__, "--batches", str(args.batches), "--child", "transform", str(root),
                         "0", str(result)], env, result)
        print(f"transform: {transform['batch_s'] * 1e3:.0f} ms per batch of 72 on {transform['device']} "
              f"(first call {transform['first_s']:.1f} s)", flush=True)
    load_after = os.getloadavg()[0]
    step, step_source = step_seconds(args)

    lines = [
        "# Training data: jaxdac vs the original",
        "",
        f"`benchmarks/train_data.py --workers {args.workers} --batches {args.batches} --files {args.files} "
        f"--seconds {args.seconds}` on {os.cpu_count()} logical CPUs (load average {load_before:.1f} before, "
        f"{load_after:.1f} after). Dataset: 2 groups x {args.files} files x {args.seconds:g} s (WAV/FLAC, "
        "44.1/48 kHz, mono/stereo); base.yml settings, batches of 72 excerpts of 0.38 s. Examples per second "
        f"over {args.batches} batches after each worker's first; the first batch (worker start-up included) apart. "
        "One BLAS/OpenMP thread per process on both sides.",
        "",
        "| workers | jaxdac examples/s | original examples/s | ratio | jaxdac first batch (s) | original first batch (s) |",
        "|---|---|---|---|---|---|",
    ]
    for w, ours, theirs in rows:
        lines.append(f"| {w} | {ours['examples_per_s']:.0f} | {theirs['examples_per_s']:.0f} | "
                     f"{ours['examples_per_s'] / theirs['examples_per_s']:.2f} | {ours['first_s']:.1f} | "
                     f"{theirs['first_s']:.1f} |")
    lines += [
        "",
        f"Scan before training (every file's header and last sample): {rows[0][1]['scan_s']:.2f} s for "
        f"{rows[0][1]['files']} files. Batch transform (jitted, on {transform['device']}): "
        f"{transform['batch_s'] * 1e3:.0f} ms per batch of 72 (first call, with compilation, "
        f"{transform['first_s']:.1f} s); the original runs its transforms inside the step.",
        "",
    ]
    if step is not None:
        need = BATCH / step
        best = max(r[1]["examples_per_s"] for r in rows)
        lines.append(f"The full-size step takes {step:.2f} s per batch of 72 ({step_source}): it consumes "
                     f"{need:.3g} examples/s, {best / need:,.0f}x less than the fastest row above delivers. On an "
                     "accelerator the step is faster and the same comparison says how many workers it needs.")
    else:
        lines.append(f"Step consumption: not computed ({step_source}).")
    text = "\n".join(lines) + "\n"
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "train_data.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
