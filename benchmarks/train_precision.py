"""Mixed precision in training: what ``step.compute_dtype=bfloat16`` does to the losses and the speed.

    .venv/bin/python benchmarks/train_precision.py [--case dac_44khz] [--batch 2] [--steps 20]
        [--out-dir benchmarks/results]

Trains the case's seeded generator and discriminator (tests/train_cases.py, the weights of the parity
tests) for ``--steps`` steps twice from the same start, once in float32 and once with bfloat16
convolutions (float32 parameters, optimiser states, quantiser and losses), on the same sequence of
batches: 0.38 s speech-like and music-like excerpts, new ones every step. Each dtype runs in a fresh
process. Reports, per logged metric, how far the bfloat16 run is from the float32 one (relative
difference of every step's value: median and largest, and at the last step), and seconds per step
after the first (which includes compiling). Writes ``train_precision.md`` and ``train_precision.csv``
(every step's metrics of both runs) and, with matplotlib, ``train_precision.png`` (the losses per step).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "benchmarks")]
from common import machine, run_child  # noqa: E402

SECONDS = 0.38
SHOWN = ("mel/loss", "adv/disc_loss", "adv/gen_loss", "adv/feat_loss", "stft/loss", "waveform/loss",
         "vq/commitment_loss", "vq/codebook_loss", "loss", "other/grad_norm", "other/grad_norm_d")


def batch(case: str, size: int, step: int) -> np.ndarray:
    """``[size, 1, T]``: speech-like and music-like excerpts, alternating, new for every step."""
    import signals
    import train_cases

    sr = train_cases.generator_config(case).sample_rate
    make = (signals.speech_like, signals.music_like)
    rows = [make[i % 2](sr, SECONDS, seed=1000 * step + i) for i in range(size)]
    return np.stack(rows)[:, None, : int(SECONDS * sr)].astype(np.float32)


def child(case: str, size: int, steps: int, dtype: str) -> dict:
    import jax

    from jaxdac.train.step import StepConfig, init_state, train_step
    from train_parity import seeded_models

    generator, discriminator = seeded_models(case)
    state = init_state(generator, discriminator, StepConfig(compute_dtype=dtype))
    metrics, times = [], []
    for k in range(steps):
        audio = jax.numpy.asarray(batch(case, size, k))
        start = time.perf_counter()
        state, m = train_step(state, audio, jax.random.key(k))
        times.append(time.perf_counter() - start)
        metrics.append({name: float(v) for name, v in jax.device_get(m).items()})
    return {"metrics": metrics, "times": times}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--case", default="dac_44khz")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--child", nargs=2, metavar=("DTYPE", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        dtype, result = args.child
        Path(result).write_text(json.dumps(child(args.case, args.batch, args.steps, dtype)))
        return

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "src")]),
               JAXDAC_COMPILATION_CACHE="off")
    load_before = os.getloadavg()[0]
    runs = {}
    for dtype in ("float32", "bfloat16"):
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            cmd = [sys.executable, __file__, "--case", args.case, "--batch", str(args.batch), "--steps",
                   str(args.steps), "--child", dtype, str(result)]
            runs[dtype], rss = run_child(cmd, result, env, timeout=7200)
        runs[dtype]["rss"] = rss
        times = runs[dtype]["times"]
        print(f"{dtype}: {np.mean(times[1:]):.3f} s/step after the first ({times[0]:.1f} s), peak {rss:.0f} MiB",
              flush=True)
    load_after = os.getloadavg()[0]

    f32, b16 = runs["float32"]["metrics"], runs["bfloat16"]["metrics"]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    with open(args.out_dir / "train_precision.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "dtype", *SHOWN])
        for k in range(args.steps):
            for dtype, metrics in (("float32", f32), ("bfloat16", b16)):
                writer.writerow([k + 1, dtype, *(f"{metrics[k][name]:.7g}" for name in SHOWN)])

    t32, t16 = (np.asarray(runs[d]["times"][1:]) for d in ("float32", "bfloat16"))
    lines = [
        "# Mixed precision in training: bfloat16 against float32",
        "",
        f"`benchmarks/train_precision.py --case {args.case} --batch {args.batch} --steps {args.steps}` on {machine()}; "
        f"1-minute load average {load_before:.1f} before and {load_after:.1f} after. Both runs start from the same "
        f"seeded weights and see the same batches ({args.batch} excerpts of {SECONDS} s, new every step); "
        "relative difference = |bfloat16 - float32| / |float32| of each step's logged value.",
        "",
        f"Seconds per step after the first: float32 {t32.mean():.3f} (std {t32.std():.3f}), bfloat16 "
        f"{t16.mean():.3f} (std {t16.std():.3f}): bfloat16 takes **{t16.mean() / t32.mean():.2f}x** the time. "
        f"First step (compiling): {runs['float32']['times'][0]:.1f} s / {runs['bfloat16']['times'][0]:.1f} s. "
        f"Peak memory {runs['float32']['rss']:.0f} / {runs['bfloat16']['rss']:.0f} MiB.",
        "",
        f"| metric | float32, step {args.steps} | bfloat16, step {args.steps} | median rel. diff | largest rel. diff | at step |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name in SHOWN:
        a = np.asarray([m[name] for m in f32])
        b = np.asarray([m[name] for m in b16])
        rel = np.abs(b - a) / np.maximum(np.abs(a), 1e-12)
        lines.append(f"| {name} | {a[-1]:.5g} | {b[-1]:.5g} | {np.median(rel):.2e} | {rel.max():.2e} | "
                     f"{int(rel.argmax()) + 1} |")
    (args.out_dir / "train_precision.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib not installed: no plot; pip install -e '.[bench]')")
        return
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    steps = np.arange(1, args.steps + 1)
    for ax, name in zip(axes, ("mel/loss", "adv/disc_loss", "adv/feat_loss")):
        for dtype, metrics, style in (("float32", f32, "-"), ("bfloat16", b16, "--")):
            ax.plot(steps, [m[name] for m in metrics], style, label=dtype)
        ax.set_title(name)
        ax.set_xlabel("step")
    axes[0].legend()
    fig.suptitle(f"{args.case}, batch {args.batch}: float32 vs bfloat16 compute")
    fig.tight_layout()
    fig.savefig(args.out_dir / "train_precision.png", dpi=110)


if __name__ == "__main__":
    main()
