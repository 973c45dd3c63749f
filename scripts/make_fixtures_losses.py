"""Golden loss values of the ORIGINAL (dac 1.0.0 ``dac.nn.loss``), for the main test suite.

Run under the reference interpreter (librosa installed, as ../shared/reference/install.sh builds it):

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_losses.py

Inputs are rebuilt from tests/train/loss_cases.py, so ``tests/fixtures/losses.npz`` holds only outputs:

* ``<loss>/<config>/<case>``: the loss value (scalar; ``[B, 1]`` for SI-SDR with reduction "none") for
  ``loss`` in mel, stft, l1, sisdr, every config of loss_cases and every case (estimate, reference);
* ``gan/<seed>/{disc,gen,feat}``: ``GANLoss.discriminator_loss`` / ``generator_loss`` on the seeded
  discriminator outputs of ``loss_cases.gan_outputs(seed)``.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "train"), str(ROOT / "tests" / "parity")]

import numpy as np

import loss_cases as cases
import reference_losses as ref


def main() -> None:
    out: dict[str, np.ndarray] = {}
    for name in cases.CASES:
        estimate, reference, sr = cases.case(name)
        for config, kwargs in cases.MEL_CONFIGS.items():
            out[f"mel/{config}/{name}"] = ref.reference_mel(estimate, reference, sr, cases.base_kwargs("mel", kwargs))[0]
        for config, kwargs in cases.STFT_CONFIGS.items():
            out[f"stft/{config}/{name}"] = ref.reference_stft(estimate, reference, sr, cases.base_kwargs("stft", kwargs))[0]
        out[f"l1/base/{name}"] = ref.reference_l1(estimate, reference, sr)[0]
        for config, kwargs in cases.SISDR_CONFIGS.items():
            out[f"sisdr/{config}/{name}"] = ref.reference_sisdr(estimate, reference, sr, cases.base_kwargs("sisdr", kwargs))[0]
    for seed in cases.GAN_SEEDS:
        values = ref.reference_gan(*cases.gan_outputs(seed))
        for key in ("disc", "gen", "feat"):
            out[f"gan/{seed}/{key}"] = values[key]

    np.savez_compressed(cases.FIXTURE, **out)
    print(f"wrote {cases.FIXTURE} ({cases.FIXTURE.stat().st_size / 1e3:.1f} kB, {len(out)} arrays)")
    for key, value in out.items():
        print(f"  {key}: {np.round(np.ravel(value), 6)}")


if __name__ == "__main__":
    main()
