"""Live model parity: the original writes a checkpoint with seeded weights and runs it; jaxdac loads
that very file through ``load_model(path=...)`` (no torch) and must agree."""

from pathlib import Path

import numpy as np
import pytest

import model_cases
import signals
from jaxdac import load_model
from model_parity import compare, run_jaxdac

HERE = Path(__file__).parent


def _input(case: str) -> np.ndarray:
    # Two items, speech-like and music-like, each 3 s plus a non-hop-multiple tail.
    config = model_cases.presets()[case]
    sr, seed = config.sample_rate, model_cases.seed_of(case) + 7
    seconds = (int(3 * sr) + 301) / sr
    return np.stack([signals.speech_like(sr, seconds, seed), signals.music_like(sr, seconds, seed)])[:, None]


@pytest.mark.parametrize("case", model_cases.CASES)
def test_model_matches_original_live(case, run_reference, tmp_path):
    x = _input(case)
    np.save(tmp_path / "input.npy", x)
    run_reference(HERE / "reference_model_run.py", case, tmp_path / "input.npy", tmp_path)
    model = load_model(path=tmp_path / "weights.pth")
    assert model.config.to_kwargs() == model_cases.presets()[case].to_kwargs()
    worst = compare(run_jaxdac(model, x), dict(np.load(tmp_path / "outputs.npz")))
    print(f"\n{case}: worst abs error audio={worst['audio']:.2e} z={worst['z']:.2e} latents={worst['latents']:.2e} "
          f"z(n=1..N)={max(v for k, v in worst.items() if k.startswith('z_n')):.2e}")
