"""The model against golden outputs of the original (tests/fixtures/model_*.npz, made by
scripts/make_fixtures_model.py in the reference environment). No torch needed."""

import numpy as np
import pytest

import model_cases
from model_parity import compare, run_jaxdac, seeded_model

FULL_SIZE = [c for c in model_cases.CASES if not c.startswith("tiny")]
TINY = [c for c in model_cases.CASES if c.startswith("tiny")]


def _check(case):
    reference = dict(np.load(model_cases.fixture_path(case)))
    ours = run_jaxdac(seeded_model(case), model_cases.case_input(case), model_cases.Z_CHANNELS_PER_N)
    worst = compare(ours, reference)
    print(f"\n{case}: worst abs error " + ", ".join(f"{k}={v:.2e}" for k, v in worst.items() if not k.startswith("z_n")))
    print(f"{case}: worst over z for every n_quantizers: {max(v for k, v in worst.items() if k.startswith('z_n')):.2e}")


@pytest.mark.parametrize("case", TINY)
def test_tiny_matches_original(case):
    _check(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", FULL_SIZE)
def test_released_config_matches_original(case):
    _check(case)
