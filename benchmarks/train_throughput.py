"""Training throughput of the whole program, jaxdac vs the original's train loop, on the same files.

    .venv/bin/python benchmarks/train_throughput.py [--cases tiny:4,44khz:2] [--steps 12] [--warmup 3]
        [--workers 2] [--threads 2] [--out-dir benchmarks/results]

Both sides train from scratch on one dataset written here (tests/parity/reference_data.py's bulk set:
24 speech files and 24 music files of 6 s, 44.1 and 48 kHz, mono and stereo), 0.38 s excerpts, float32,
data loaded by worker processes while the model trains:

* jaxdac: :func:`jaxdac.train.loop.run` (what ``jaxdac train`` runs) with the case's preset, its Grain
  pipeline with ``--workers`` worker processes, validation, samples and checkpoints moved past the end
  (only the export at the end remains, outside the timed steps);
* the original: ``scripts/train.py``'s loop as it runs it: ``build_dataset`` (tests/parity/
  reference_data.py: AudioLoader + AudioDataset per group, ConcatDataset, base.yml's transforms), a torch
  ``DataLoader`` with ``--workers`` workers and the dataset's collate, the batch transform on the main
  process, then the step (scripts/reference_training.py, equal to train_loop with amp off).

The cases name a jaxdac training preset and a batch size. The "tiny" preset's narrow discriminator has
no counterpart in the original, so here both sides use the exportable tiny discriminator
(``DISCRIMINATOR_PRESETS["tiny"]``: periods 2 and 3, STFT sizes 256 and 128); full-size presets use
the default discriminator on both sides. Each side runs in a fresh process (empty compilation cache for
jaxdac), the sides alternating. Reported: wall time of the whole process (start-up, compile, the steps),
steady-state steps/s and examples/s over the steps after ``--warmup`` (timestamps taken as each step's
metrics reach the host), and that against the original's. Writes ``train_throughput.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests"), str(REPO / "tests" / "parity"), str(REPO / "scripts")]
SECONDS = 0.38

from common import machine, reference_python, run_child, write_results  # noqa: E402

# jaxdac's training presets -> their generator's model preset (the original side builds that model).
MODEL_OF = {"tiny": "tiny", "44khz": "dac_44khz", "44khz_16kbps": "dac_44khz_16kbps", "24khz": "dac_24khz",
            "16khz": "dac_16khz"}


def run_config(case: str, batch: int, folders: dict, workers: int, steps: int):
    from jaxdac.config import DISCRIMINATOR_PRESETS
    from jaxdac.train.config import get_preset

    config = get_preset(case)
    if case == "tiny":
        config = dataclasses.replace(config, discriminator=DISCRIMINATOR_PRESETS["tiny"])
    never = steps + 10
    return dataclasses.replace(
        config,
        data=dataclasses.replace(config.data, train=folders, val=folders, batch_size=batch, val_batch_size=batch,
                                 val_examples=batch, duration=SECONDS, num_workers=workers),
        schedule=dataclasses.replace(config.schedule, num_iters=steps, valid_freq=never, sample_freq=never,
                                     checkpoint_freq=never, save_iters=()),
    )


def child_jaxdac(case: str, batch: int, folders: dict, steps: int, workers: int, out_dir: Path) -> dict:
    from jaxdac.train.loop import run

    config = run_config(case, batch, folders, workers, steps)
    stamps = []
    run(config, out_dir, num_iters=steps, progress=False, on_step=lambda step, m: stamps.append(time.perf_counter()))
    return {"stamps": stamps}


def child_original(case: str, batch: int, folders: dict, steps: int, workers: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    import dac

    import train_cases
    from reference_data import build_original
    from reference_training import OriginalTrainer

    from jaxdac.config import PRESETS  # plain dataclasses: importable without JAX

    model = PRESETS[MODEL_OF[case]].replace(quantizer_dropout=0.5)  # as the jaxdac presets set it
    generator = dac.model.DAC(encoder_dim=model.encoder_dim, encoder_rates=list(model.encoder_rates),
                              latent_dim=model.latent_dim, decoder_dim=model.decoder_dim,
                              decoder_rates=list(model.decoder_rates), n_codebooks=model.n_codebooks,
                              codebook_size=model.codebook_size, codebook_dim=model.codebook_dim,
                              quantizer_dropout=model.quantizer_dropout, sample_rate=model.sample_rate)
    kwargs = {**(train_cases.CASES["tiny"][1] if case == "tiny" else {}), "sample_rate": model.sample_rate}
    discriminator = dac.model.Discriminator(**kwargs)
    trainer = OriginalTrainer(generator, discriminator)
    dataset = build_original(folders, model.sample_rate, duration=SECONDS, n_examples=10_000_000, augment_prob=0.0)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=dataset.collate,
                                         shuffle=False, persistent_workers=workers > 0)
    stamps = []
    for i, item in enumerate(loader):
        if i == steps:
            break
        with torch.no_grad():
            signal = dataset.transform(item["signal"].clone(), **item["transform_args"])
        trainer.step(signal.audio_data.numpy())
        stamps.append(time.perf_counter())
    return {"stamps": stamps}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default="tiny:4,44khz:2")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=3, help="steps left out of the steady state (compile, workers)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--child", nargs=5, metavar=("SIDE", "CASE", "BATCH", "DATA", "RESULT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps <= args.warmup + 1:
        parser.error("--steps must exceed --warmup by at least 2")

    if args.child:
        side, case, size, data, result = args.child
        folders = json.loads(Path(data).read_text())
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            if side == "jaxdac":
                out = child_jaxdac(case, int(size), folders, args.steps, args.workers, Path(tmp) / "run")
            else:
                out = child_original(case, int(size), folders, args.steps, args.workers, args.threads)
        out["start"] = start
        Path(result).write_text(json.dumps(out))
        return

    from reference_data import write_bulk_dataset

    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "tests"), str(REPO / "tests" / "parity"),
                                                       str(REPO / "scripts"), str(REPO / "src")]),
               OMP_NUM_THREADS=str(args.threads), JAXDAC_COMPILATION_CACHE="off",
               # torch's OpenMP threads sleep when idle instead of spinning: on a machine shared with
               # other work, spinning threads slow the original many times over, which is not its speed.
               OMP_WAIT_POLICY=os.environ.get("OMP_WAIT_POLICY", "PASSIVE"))
    reference = reference_python()
    load_before = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = write_bulk_dataset(Path(tmp) / "data")
        data = Path(tmp) / "folders.json"
        data.write_text(json.dumps(folders))
        for spec in args.cases.split(","):
            case, size = spec.split(":")
            results = {}
            for side in ("original", "jaxdac"):
                result = Path(tmp) / "result.json"
                python = str(reference) if side == "original" else sys.executable
                cmd = [python, __file__, "--steps", str(args.steps), "--warmup", str(args.warmup), "--workers",
                       str(args.workers), "--threads", str(args.threads), "--child", side, case, size, str(data),
                       str(result)]
                launched = time.perf_counter()
                out, rss = run_child(cmd, result, env, timeout=7200)
                wall = time.perf_counter() - launched
                stamps = np.asarray(out["stamps"])
                steady = np.diff(stamps[args.warmup:])
                steps_per_s = 1 / steady.mean()
                results[side] = {"wall_s": wall, "first_step_s": stamps[0] - out["start"], "step_s": steady.mean(),
                                 "step_std_s": steady.std(), "steps_per_s": steps_per_s,
                                 "examples_per_s": steps_per_s * int(size), "peak_mib": rss}
                print(f"{case} batch {size} {side}: {steps_per_s:.3f} steps/s ({steps_per_s * int(size):.2f} "
                      f"examples/s), {wall:.0f} s for the whole process", flush=True)
            for side, r in results.items():
                rows.append({"case": case, "batch": int(size), "side": side, **r,
                             "ratio": r["step_s"] / results["original"]["step_s"]})
    load_after = os.getloadavg()[0]

    lines = [
        "# Training throughput: the whole program, jaxdac vs the original",
        "",
        f"`benchmarks/train_throughput.py --cases {args.cases} --steps {args.steps} --warmup {args.warmup} "
        f"--workers {args.workers} --threads {args.threads}` on {machine()}; 1-minute load average "
        f"{load_before:.1f} before and {load_after:.1f} after. float32, {SECONDS} s excerpts of 48 files, "
        f"{args.workers} data workers on both sides; the original with OMP_WAIT_POLICY={env['OMP_WAIT_POLICY']}. Steady state: steps {args.warmup + 1} to {args.steps}; "
        "first step = from process start to the first step's metrics (imports, data workers, compiling); "
        "whole process = launch to exit; ratio = jaxdac's seconds per step / the original's.",
        "",
        "| preset | batch | side | steps/s | examples/s | s/step (std) | ratio | first step s | whole process s | peak MiB |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['case']} | {r['batch']} | {r['side']} | {r['steps_per_s']:.3f} | {r['examples_per_s']:.2f} | "
                     f"{r['step_s']:.2f} ({r['step_std_s']:.2f}) | **{r['ratio']:.2f}** | {r['first_step_s']:.1f} | "
                     f"{r['wall_s']:.0f} | {r['peak_mib']:.0f} |")
    write_results(args.out_dir, "train_throughput", "\n".join(lines), rows)


if __name__ == "__main__":
    main()
