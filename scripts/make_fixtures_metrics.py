"""Golden evaluation metrics of the ORIGINAL (scripts/evaluate.py's get_metrics), for the main test suite.

Run under the reference interpreter:

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_metrics.py

Pairs are rebuilt from tests/metrics_cases.py, so ``tests/fixtures/metrics.npz`` holds only outputs:

* ``<case>/<metric>``: float64 value for every case and every metric name (mel-22k ... sisdr-44k), from
  AudioSignals of the case's arrays resampled by the original to 22.05 and 44.1 kHz (tests/parity/
  reference_metrics.py ``get_metrics``; loading a float WAV gives the same arrays, checked live by the
  parity suite);
* ``<case>/pesq_{estimate,reference}`` for the speech cases: the mono 16 kHz signals that
  audiotools.metrics.quality.pesq hands to the pesq package for the 44.1 kHz pair (STOI's 44.1 kHz
  inputs are left to the live parity suite: too large for a fixture).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "parity")]

import numpy as np

import metrics_cases as cases
import reference_metrics as ref


def main() -> None:
    out: dict[str, np.ndarray] = {}
    state = ref.losses()
    for name in cases.CASES:
        estimate, estimate_rate, reference, reference_rate = cases.case(name)
        signal, recons = ref.load(reference, reference_rate), ref.load(estimate, estimate_rate)
        for key, value in ref.get_metrics(signal, recons, state).items():
            out[f"{name}/{key}"] = np.float64(value)
        if name in cases.SPEECH_CASES:
            for key, value in ref.speech_inputs(signal, recons).items():
                if key.startswith("pesq_"):
                    out[f"{name}/{key}"] = value.astype(np.float32)

    np.savez_compressed(cases.FIXTURE, **out)
    print(f"wrote {cases.FIXTURE} ({cases.FIXTURE.stat().st_size / 1e3:.1f} kB, {len(out)} arrays)")
    for key, value in out.items():
        if value.ndim == 0:
            print(f"  {key}: {float(value):.7g}")


if __name__ == "__main__":
    main()
