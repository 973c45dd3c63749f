"""Discriminator parity cases shared by the golden-fixture script, the main suite and the parity suite.

numpy only: the fixture script and tests/parity/reference_discriminator.py import this under the
reference interpreter, where jax is absent; configs are plain kwargs dicts, turned into a
``DiscriminatorConfig`` by whichever side needs one (``config_class()`` loads src/jaxdac/config.py by
file path, as tests/model_cases.py does).
"""

from __future__ import annotations

import functools
import json
import sys
import zlib
from pathlib import Path

import numpy as np

import model_cases
import signals

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "tests" / "fixtures"
FIXTURE = FIXTURES / "discriminator_tiny.npz"
PTH_FIXTURE = FIXTURES / "discriminator_tiny.pth"

# Golden-fixture cases (kwargs of the original's Discriminator), all buildable by the original:
# "tiny" is the preset (two MPDs, two MRDs over the five bands); "tiny_msd" covers the multi-scale
# waveform discriminator, at 24 kHz with a 3:1 resampling; "pth" is the small file stored as
# tests/fixtures/discriminator_tiny.pth (one MRD, one band: about 100 k parameters).
CASES = {
    "tiny": {"rates": [], "periods": [2, 3], "fft_sizes": [256, 128], "sample_rate": 44100},
    "tiny_msd": {"rates": [1, 3], "periods": [], "fft_sizes": [], "sample_rate": 24000},
}
PTH_CASE = {"rates": [], "periods": [], "fft_sizes": [128], "sample_rate": 44100, "bands": [[0.0, 0.5]]}
SECONDS = 0.05
EXTRA_SAMPLES = 37  # 2242 samples at 44.1 kHz: a multiple of 2 (the MPD pads a whole period) but not of 3
KEEP_CHANNELS = 2  # channels of each feature map stored in full (first and last); the rest as statistics


def config_class():
    """``DiscriminatorConfig`` of src/jaxdac/config.py, loaded without importing the jaxdac package."""
    model_cases.presets()
    return sys.modules["_jaxdac_config_standalone"].DiscriminatorConfig


def seed_of(case: str) -> int:
    return zlib.crc32(("discriminator/" + case).encode()) % 10_000


def case_input(sample_rate: int, seconds: float, seed: int, extra: int = EXTRA_SAMPLES) -> np.ndarray:
    """``[2, 1, T]`` float32: a speech-like and a music-like item."""
    n = int(seconds * sample_rate) + extra
    speech = signals.speech_like(sample_rate, n / sample_rate, seed)
    music = signals.music_like(sample_rate, n / sample_rate, seed + 1)
    return np.stack([speech, music])[:, None, :].astype(np.float32)


def seeded_state_dict(shapes: dict[str, tuple[int, ...]], seed: int) -> dict[str, np.ndarray]:
    """Random discriminator weights in the original's state-dict layout, a pure function of (seed, key, shape).

    As :func:`model_cases.seeded_state_dict`, but ``weight_g`` is drawn around 1.5: a weight-normed
    layer scales its input patch's norm by about ``g / sqrt(fan_in)`` per output and LeakyReLU halves the
    power, so with ``g`` near ``sqrt(2)`` activations keep their scale through six layers instead of
    shrinking into the biases. ``weight_g`` is not ``||weight_v||`` and biases are not zero, so a wrong
    norm axis, a dropped bias or a mis-mapped parameter changes the outputs.
    """
    out = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        if key.endswith("weight_v"):
            value = rng.standard_normal(shape)
        elif key.endswith("weight_g"):
            value = rng.uniform(1.2, 1.8, shape)
        elif key.endswith("bias"):
            value = rng.uniform(-0.05, 0.05, shape)
        else:
            raise KeyError(f"no recipe for discriminator parameter {key}")
        out[key] = value.astype(np.float32)
    return out


def summarise(prefix: str, fmap: np.ndarray) -> dict[str, np.ndarray]:
    """A feature map ``[B, C, ...]`` as fixture entries: the first and last channels in full, and for every
    channel the mean and root mean square over positions, plus the peak magnitude (its scale).

    Every entry differs from the same summary of another map by at most their largest elementwise
    difference, so one tolerance relative to the scale serves all of them.
    """
    fmap = np.asarray(fmap, np.float32)
    b, c = fmap.shape[:2]
    keep = sorted({0, c - 1})[:KEEP_CHANNELS]
    flat = fmap.reshape(b, c, -1).astype(np.float64)
    return {
        f"{prefix}/shape": np.asarray(fmap.shape, np.int64),
        f"{prefix}/channels": fmap[:, keep],
        f"{prefix}/mean": flat.mean(-1).astype(np.float32),
        f"{prefix}/rms": np.sqrt((flat**2).mean(-1)).astype(np.float32),
        f"{prefix}/scale": np.float32(np.abs(fmap).max()),
    }


def fmap_key(case: str, d: int, m: int) -> str:
    return f"{case}/d{d}/m{m}"


# --- comparing with the fixture (main suite) -----------------------------------------------------------

TOLERANCE = 1e-4  # of each feature map's scale (its peak magnitude in the original's output)


@functools.lru_cache(maxsize=None)
def fixture() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE))


def original_shapes(case: str) -> dict[str, tuple[int, ...]]:
    """The original's state-dict keys and shapes for a fixture case (or "default")."""
    return {k: tuple(v) for k, v in json.loads(str(fixture()[f"{case}/key_shapes"])).items()}


def compare_with_fixture(case: str, outputs) -> float:
    """Check every feature map of ``outputs`` (nested lists of arrays) against the fixture's summary of
    the original's; returns the worst error of any entry relative to its map's scale."""
    ref = fixture()
    assert [len(maps) for maps in outputs] == list(ref[f"{case}/n_maps"])
    worst = 0.0
    for d, maps in enumerate(outputs):
        for m, fmap in enumerate(maps):
            prefix = fmap_key(case, d, m)
            ours = summarise(prefix, np.asarray(fmap))
            np.testing.assert_array_equal(ours.pop(f"{prefix}/shape"), ref[f"{prefix}/shape"], err_msg=prefix)
            scale = float(ref[f"{prefix}/scale"])
            assert scale > 0, prefix
            for key, value in ours.items():
                error = float(np.max(np.abs(value - ref[key]))) / scale
                assert error <= TOLERANCE, f"{key}: error {error:.2e} of the map's scale {scale:.3g}"
                worst = max(worst, error)
    return worst
