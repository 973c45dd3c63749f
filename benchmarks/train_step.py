"""Seconds per training step, jaxdac vs the original, side by side in one run.

    .venv/bin/python benchmarks/train_step.py [--cases tiny:2,dac_44khz:2,dac_44khz:8] [--steps 5]
        [--threads 2] [--out-dir benchmarks/results]

Each case is a generator preset and a batch size of 0.38 s excerpts (tests/train_cases.py's speech-like
and music-like excerpts, repeated to fill the batch), with the discriminator of tests/train_cases.py for
that preset (the original's default one for full-size presets; two MPDs and two MRDs for "tiny").
Seeded weights on both sides. Every measurement runs in a fresh process, the sides alternating:

* jaxdac: ``jaxdac.train.train_step`` (``check=False``: the loop of ``jaxdac train`` checks a step's
  metrics one step later, so the host does not wait), float32 and ``compute_dtype="bfloat16"``;
  the first step (trace + compile + run) is reported apart, then ``--steps`` timed steps, each ended by
  ``block_until_ready``;
* the original: ``scripts/reference_training.py::OriginalTrainer.step``, which equals its
  ``scripts/train.py::train_loop`` (amp off), under ``torch.set_num_threads(--threads)``; its first step
  is reported apart too.

Reported: mean and standard deviation of the timed steps, the first step, and the child's peak resident
memory (``ru_maxrss`` via ``os.wait4``). Writes ``train_step.md`` and ``train_step.csv`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
from common import machine, reference_python, run_child, write_results  # noqa: E402

SECONDS = 0.38


def batch(case: str, size: int) -> np.ndarray:
    import train_cases

    sr = train_cases.generator_config(case).sample_rate
    n = int(SECONDS * sr)
    base = train_cases.batch(case)[..., :n]
    if base.shape[-1] < n:
        base = np.pad(base, ((0, 0), (0, 0), (0, n - base.shape[-1])), mode="wrap")
    return np.concatenate([base] * ((size + 1) // 2))[:size]


def child_jaxdac(case: str, size: int, steps: int, dtype: str) -> dict:
    import jax

    from jaxdac.train.step import StepConfig, init_state, train_step
    from train_parity import seeded_models

    generator, discriminator = seeded_models(case)
    state = init_state(generator, discriminator, StepConfig(compute_dtype=dtype))
    audio = jax.numpy.asarray(batch(case, size))
    start = time.perf_counter()
    state, metrics = train_step(state, audio, jax.random.key(0), check=False)
    jax.block_until_ready((state, metrics))
    first = time.perf_counter() - start
    times = []
    for k in range(steps):
        start = time.perf_counter()
        state, metrics = train_step(state, audio, jax.random.key(k + 1), check=False)
        jax.block_until_ready((state, metrics))
        times.append(time.perf_counter() - start)
    return {"first": first, "times": times, "mel": float(metrics["mel/loss"])}


def child_original(case: str, size: int, steps: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    trainer = _original_trainer(case)
    audio = batch(case, size)
    start = time.perf_counter()
    trainer.step(audio)
    first = time.perf_counter() - start
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        metrics = trainer.step(audio)
        times.append(time.perf_counter() - start)
    return {"first": first, "times": times, "mel": metrics["mel/loss"]}


def _original_trainer(case: str):
    import dac

    import train_cases
    from reference_model import build_original
    from reference_training import OriginalTrainer, build_discriminator

    generator = build_original(train_cases.generator_config(case), train_cases.seed_of(case))
    kwargs = train_cases.discriminator_kwargs(case)
    shapes = {k: tuple(v.shape) for k, v in dac.model.Discriminator(**kwargs).state_dict().items()}
    discriminator = build_discriminator(kwargs, train_cases.discriminator_weights(shapes, case))
    return OriginalTrainer(generator, discriminator)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="tiny:2,dac_44khz:2,dac_44khz:8")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--child", nargs=5, metavar=("SIDE", "CASE", "BATCH", "DTYPE", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        side, case, size, dtype, result = args.child
        if side == "jaxdac":
            out = child_jaxdac(case, int(size), args.steps, dtype)
        else:
            out = child_original(case, int(size), args.steps, args.threads)
        Path(result).write_text(json.dumps(out))
        return

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "src")]),
               OMP_NUM_THREADS=str(args.threads), JAXDAC_COMPILATION_CACHE="off")
    reference = reference_python()
    load_before = os.getloadavg()[0]
    rows = []
    for spec in args.cases.split(","):
        case, size = spec.split(":")
        runs = [("original", "float32")] + [("jaxdac", d) for d in args.dtypes.split(",")]
        results = {}
        for side, dtype in runs:  # original, then jaxdac: alternating per case
            with tempfile.TemporaryDirectory() as tmp:
                result = Path(tmp) / "result.json"
                python = str(reference) if side == "original" else sys.executable
                cmd = [python, __file__, "--steps", str(args.steps), "--threads", str(args.threads),
                       "--child", side, case, size, dtype, str(result)]
                out, rss = run_child(cmd, result, env, timeout=7200)
            times = np.asarray(out["times"])
            results[side, dtype] = (times.mean(), times.std(), out["first"], rss, out["mel"])
            print(f"{case} batch {size} {side} {dtype}: {times.mean():.3f} s/step (std {times.std():.3f}), "
                  f"first step {out['first']:.1f} s, peak {rss:.0f} MiB", flush=True)
        base = results["original", "float32"][0]
        for (side, dtype), (mean, std, first, rss, mel) in results.items():
            rows.append({"case": case, "batch": int(size), "side": side, "dtype": dtype, "step_s": mean,
                         "std_s": std, "first_step_s": first, "peak_mib": rss, "ratio": mean / base, "mel": mel})
    load_after = os.getloadavg()[0]

    lines = [
        "# Training step: jaxdac vs the original",
        "",
        f"`benchmarks/train_step.py --cases {args.cases} --steps {args.steps} --threads {args.threads}` on "
        f"{machine()}; 1-minute load average {load_before:.1f} before and {load_after:.1f} after. "
        f"Excerpts of {SECONDS} s; seconds per step over {args.steps} steps after the first (mean, std); "
        "first step = trace + compile + run for jaxdac, the first run for the original; ratio = step time / "
        "the original's float32 step time; peak = the process's peak resident memory.",
        "",
        "| model | batch | side | dtype | s/step | std | ratio | first step s | peak MiB | mel loss after |",
        "|---|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['batch']} | {r['side']} | {r['dtype']} | {r['step_s']:.3f} | {r['std_s']:.3f} | "
                     f"**{r['ratio']:.2f}** | {r['first_step_s']:.1f} | {r['peak_mib']:.0f} | {r['mel']:.4f} |")
    write_results(args.out_dir, "train_step", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
