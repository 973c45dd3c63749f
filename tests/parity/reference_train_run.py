"""Run the ORIGINAL's training step on a case of tests/train_cases.py (reference interpreter only).

    reference_train_run.py CASE STEPS OUT_DIR [RECORD_STEP ...]

Writes the seeded weights as the original's files (OUT_DIR/dac/weights.pth, OUT_DIR/discriminator/
weights.pth), runs STEPS steps of ``reference_training.OriginalTrainer`` (the original's train_loop) on the
case's batch, and writes OUT_DIR/metrics.json (the metrics of every step) and, after each RECORD_STEP,
OUT_DIR/step_<k>.npy: every parameter's update since the start (new minus initial) and the step's
gradients before clipping, float32, flattened and concatenated in the order of OUT_DIR/step_keys.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from reference_training import run_case


def main(case: str, steps: int, out: Path, record: set[int]):
    metrics, updates = run_case(case, steps, out, record)
    (out / "metrics.json").write_text(json.dumps(metrics))
    for k, values in updates.items():
        np.save(out / f"step_{k}.npy", np.concatenate([u.ravel() for u in values.values()]))
        (out / "step_keys.json").write_text(json.dumps([(name, list(u.shape)) for name, u in values.items()]))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), {int(a) for a in sys.argv[4:]})
