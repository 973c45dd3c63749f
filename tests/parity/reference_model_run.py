"""Reference side of tests/parity/test_model_parity.py (runs under the original's interpreter).

    reference_model_run.py CASE INPUT.npy OUT_DIR

Writes OUT_DIR/weights.pth (the original's checkpoint format, seeded weights of the case) and
OUT_DIR/outputs.npz (everything scripts/reference_model.py compares, with all of z for every n).
"""

import sys
from pathlib import Path

import numpy as np

import model_cases
from reference_model import build_original, run_original

case, input_path, out_dir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
model = build_original(model_cases.presets()[case], model_cases.seed_of(case), out_dir / "weights.pth")
np.savez(out_dir / "outputs.npz", **run_original(model, np.load(input_path), per_n_channels=None))
