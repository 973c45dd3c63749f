"""Training-step parity cases shared by the golden-fixture script, the main suite and the parity suite.

numpy only (imported under the reference interpreter too). A case is a generator preset, a discriminator
config (the original's kwargs) and a batch of two excerpts, a speech-like and a music-like one; weights
are seeded with tests/model_cases.py (generator) and tests/discriminator_cases.py (discriminator), written
by the original and read back by jaxdac from those files, so both sides start from the same numbers.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

import discriminator_cases
import model_cases
import signals

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "train_step_tiny.npz"

_DEFAULT_DISCRIMINATOR = {"rates": [], "periods": [2, 3, 5, 7, 11], "fft_sizes": [2048, 1024, 512]}
CASES = {
    # name: (generator preset, discriminator kwargs without sample_rate, excerpt seconds)
    "tiny": ("tiny", {"rates": [], "periods": [2, 3], "fft_sizes": [256, 128]}, 0.1),
    "dac_44khz": ("dac_44khz", _DEFAULT_DISCRIMINATOR, 0.38),
    "dac_24khz": ("dac_24khz", _DEFAULT_DISCRIMINATOR, 0.38),
    "dac_16khz": ("dac_16khz", _DEFAULT_DISCRIMINATOR, 0.38),
}
FIXTURE_STEPS = 2  # metrics of this many steps go into the fixture; parameter updates of the first
SAMPLED = 256  # elements of each discriminator update stored in the fixture (the generator's are stored whole)


def seed_of(case: str) -> int:
    return zlib.crc32(("train/" + case).encode()) % 10_000


def generator_config(case: str):
    return model_cases.presets()[CASES[case][0]]


def discriminator_kwargs(case: str) -> dict:
    preset, kwargs, _ = CASES[case]
    return {**kwargs, "sample_rate": model_cases.presets()[preset].sample_rate}


def batch(case: str) -> np.ndarray:
    """``[2, 1, T]`` float32 at the generator's rate: excerpts that are not a multiple of the hop."""
    sr = generator_config(case).sample_rate
    n = int(CASES[case][2] * sr) + 37
    seed = seed_of(case)
    speech = signals.speech_like(sr, n / sr, seed)
    music = signals.music_like(sr, n / sr, seed + 1)
    return np.stack([speech, music])[:, None, :].astype(np.float32)


def generator_weights(shapes: dict[str, tuple[int, ...]], case: str) -> dict[str, np.ndarray]:
    return model_cases.seeded_state_dict(shapes, seed_of(case))


def discriminator_weights(shapes: dict[str, tuple[int, ...]], case: str) -> dict[str, np.ndarray]:
    return discriminator_cases.seeded_state_dict(shapes, seed_of(case) + 1)


def sample_indices(name: str, size: int) -> np.ndarray:
    """Which elements of a (flattened) discriminator tensor the fixture keeps, a function of its name."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    return np.sort(rng.choice(size, min(SAMPLED, size), replace=False))


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64).ravel(), np.asarray(b, np.float64).ravel()
    norm = np.linalg.norm(a) * np.linalg.norm(b)
    return float(a @ b / norm) if norm > 0 else float(np.array_equal(a, b))
