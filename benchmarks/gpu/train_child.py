"""One side of the GPU training-step benchmark, in a fresh process: ``benchmarks/train_step.py``'s children
moved to the GPU (run by ``benchmarks/gpu/bench.py train``; one process per side so each has the whole GPU).

    python3 benchmarks/gpu/train_child.py jaxdac|original CASE BATCH DTYPE RESULT.json --steps 5 --budget-s 60

Batch: ``benchmarks/train_step.py::batch`` (0.38 s excerpts for full-size cases), seeded weights as there.

* jaxdac: ``jaxdac.train.train_step`` (``check=False``, as the loop of ``jaxdac train`` runs it), float32 or
  ``compute_dtype="bfloat16"``, on JAX's default device; each step ends with ``jax.block_until_ready``.
* the original: ``scripts/reference_training.py::OriginalTrainer.step`` (its ``train_loop`` with amp off)
  with both models on ``--device`` (cuda when available), built as ``train_step.py::_original_trainer`` does
  but moved to the device before the optimisers are made. Two adaptations, both here and not in the
  shared file: the batch is moved to the device where the step wraps it in an ``AudioSignal``, and the
  parity-test bookkeeping ``_gradients`` (a host copy of every gradient, which the original's train loop
  does not do) is skipped. Each step ends with ``torch.cuda.synchronize()``.

The first step (trace + compile + run for jaxdac, the first run for the original) is reported apart, then
up to ``--steps`` timed steps, fewer once ``--budget-s`` seconds have passed (at least 2). Also reported:
peak device memory (JAX ``memory_stats``, torch ``max_memory_allocated``) and the mel loss after the last step.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "src")]


def timed_steps(step, steps: int, budget_s: float) -> tuple[float, list[float]]:
    """``step()`` once (the first step), then up to ``steps`` timed calls within ``budget_s`` (at least 2)."""
    start = time.perf_counter()
    step()
    first = time.perf_counter() - start
    times, begin = [], time.perf_counter()
    for k in range(steps):
        if k >= 2 and time.perf_counter() - begin > budget_s:
            break
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return first, times


def child_jaxdac(case: str, size: int, steps: int, dtype: str, budget_s: float) -> dict:
    import jax

    from jaxdac.train.step import StepConfig, init_state, train_step
    from train_parity import seeded_models
    from train_step import batch

    generator, discriminator = seeded_models(case)
    box = {"state": init_state(generator, discriminator, StepConfig(compute_dtype=dtype)), "k": 0}
    audio = jax.numpy.asarray(batch(case, size))

    def step():
        box["k"] += 1
        box["state"], box["metrics"] = train_step(box["state"], audio, jax.random.key(box["k"]), check=False)
        jax.block_until_ready((box["state"], box["metrics"]))

    first, times = timed_steps(step, steps, budget_s)
    device = jax.devices()[0]
    stats = device.memory_stats() or {}
    return {"first": first, "times": times, "mel": float(box["metrics"]["mel/loss"]),
            "peak_gib": stats.get("peak_bytes_in_use", float("nan")) / 2**30,
            "device": f"{device.platform}: {device.device_kind}", "jax": jax.__version__}


def child_original(case: str, size: int, steps: int, device_name: str, budget_s: float) -> dict:
    import dac
    import torch

    import reference_training
    import train_cases
    from reference_model import build_original
    from train_step import batch

    device = torch.device("cuda" if device_name == "auto" and torch.cuda.is_available() else
                          ("cpu" if device_name == "auto" else device_name))
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    signal_class = reference_training.AudioSignal
    reference_training.AudioSignal = lambda data, rate: signal_class(data.to(device), rate)
    reference_training._gradients = lambda model, prefix: {}

    generator = build_original(train_cases.generator_config(case), train_cases.seed_of(case)).to(device)
    kwargs = train_cases.discriminator_kwargs(case)
    shapes = {k: tuple(v.shape) for k, v in dac.model.Discriminator(**kwargs).state_dict().items()}
    discriminator = reference_training.build_discriminator(kwargs, train_cases.discriminator_weights(shapes, case))
    trainer = reference_training.OriginalTrainer(generator, discriminator.to(device))
    audio = batch(case, size)
    box = {}

    def step():
        box["metrics"] = trainer.step(audio)
        sync()

    first, times = timed_steps(step, steps, budget_s)
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else float("nan")
    return {"first": first, "times": times, "mel": box["metrics"]["mel/loss"], "peak_gib": peak,
            "device": str(device), "torch": torch.__version__}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("side", choices=["jaxdac", "original"])
    parser.add_argument("case")
    parser.add_argument("batch", type=int)
    parser.add_argument("dtype")
    parser.add_argument("result", type=Path)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--budget-s", type=float, default=60.0)
    parser.add_argument("--device", default="auto", help="the original's device: cuda, cpu or auto")
    args = parser.parse_args()
    if args.side == "jaxdac":
        out = child_jaxdac(args.case, args.batch, args.steps, args.dtype, args.budget_s)
    else:
        out = child_original(args.case, args.batch, args.steps, args.device, args.budget_s)
    args.result.write_text(json.dumps(out))


if __name__ == "__main__":
    main()
