"""Model parity cases shared by the golden-fixture script, the main suite and the parity suite.

numpy only: the fixture script imports this under the reference interpreter, where jaxdac's
dependencies (jax) are absent, so the presets are read from ``src/jaxdac/config.py`` by file path.
"""

from __future__ import annotations

import importlib.util
import sys
import zlib
from pathlib import Path

import numpy as np

import signals

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"

# Every preset is checked; the tiny ones on a batch of two, the full-size ones on one mixture.
CASES = ("tiny", "tiny_16khz", "dac_44khz", "dac_44khz_16kbps", "dac_24khz", "dac_16khz")
SECONDS = 3.0
EXTRA_SAMPLES = 137  # an input length that is not a hop multiple exercises the right padding
Z_CHANNELS_PER_N = 16  # channels of z kept per n_quantizers value in the fixtures (size)


def presets():
    """The ``PRESETS`` dict of src/jaxdac/config.py, loaded without importing the jaxdac package."""
    name = "_jaxdac_config_standalone"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "src" / "jaxdac" / "config.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].PRESETS


def seed_of(case: str) -> int:
    return zlib.crc32(case.encode()) % 10_000


def case_input(case: str) -> np.ndarray:
    """``[B, 1, T]`` float32 input for ``case``: speech-like and music-like items for tiny models, their
    mixture for full-size ones (fixtures stay small)."""
    config = presets()[case]
    sr, seed = config.sample_rate, seed_of(case)
    n = int(SECONDS * sr) + EXTRA_SAMPLES
    speech = signals.speech_like(sr, n / sr, seed)
    music = signals.music_like(sr, n / sr, seed + 1)
    if case.startswith("tiny"):
        return np.stack([speech, music])[:, None, :].astype(np.float32)
    return (0.6 * speech + 0.4 * music)[None, None, :].astype(np.float32)


def seeded_state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Random weights in the original's state-dict layout, a pure function of (seed, key, shape).

    Unlike a fresh init, ``weight_g`` is not ``||weight_v||`` and biases and Snake ``alpha`` are not
    constants, so a wrong weight-norm axis, a dropped bias or a mis-mapped parameter changes outputs.
    """
    out = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("weight_v"):
            value = rng.standard_normal(shape)
        elif key.endswith("weight_g"):
            value = rng.uniform(0.3, 0.8, shape)  # the per-channel norm of the effective weight
        elif key.endswith("bias"):
            value = rng.uniform(-0.05, 0.05, shape)
        elif key.endswith("alpha"):
            value = rng.uniform(0.5, 2.0, shape)
        elif key.endswith("codebook.weight"):
            value = rng.standard_normal(shape)
        else:
            raise KeyError(f"no recipe for parameter {key}")
        out[key] = value.astype(np.float32)
    return out


def fixture_path(case: str) -> Path:
    return FIXTURES / f"model_{case}.npz"
