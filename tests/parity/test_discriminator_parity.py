"""Live parity of the discriminator: the original (tests/parity/reference_discriminator.py, run under the
reference interpreter) writes seeded weights with its own ``Discriminator.save`` and runs them; jaxdac
reads that file with ``load_discriminator`` and runs it on the same batch. Every feature map of every
sub-discriminator must agree within 1e-4 of its scale (its peak magnitude in the original's output).

Full-size configs (the original's conf/base.yml and conf/final/{24,16}khz.yml discriminators, 42.5 M
parameters) on a batch of two 0.38 s excerpts (the training excerpt length), plus the optional multi-scale
waveform discriminator (rates 1 and 2) on a short batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest
from flax import nnx

import discriminator_cases as cases
from jaxdac.config import DiscriminatorConfig
from jaxdac.weights import convert
from jaxdac.weights.discriminator import load_discriminator

SCRIPT = Path(__file__).with_name("reference_discriminator.py")
TOLERANCE = 1e-4
EXCERPT = 0.38  # seconds, conf/base.yml's train excerpt

# name: (kwargs of the original's Discriminator, seconds of audio)
CASES = {
    "default_44khz": ({}, EXCERPT),
    "msd_44khz": ({"rates": [1, 2]}, 0.1),
    "final_24khz": ({"sample_rate": 24000}, EXCERPT),
    "final_16khz": ({"sample_rate": 16000}, EXCERPT),
}


def run_original(run_reference, tmp_path: Path, kwargs: dict, seed: int, audio: np.ndarray, save: Path) -> dict:
    np.savez(tmp_path / "input.npz", audio=audio)
    request = {"kwargs": kwargs, "seed": seed, "input": str(tmp_path / "input.npz"), "save": str(save)}
    (tmp_path / "request.json").write_text(json.dumps(request))
    run_reference(SCRIPT, tmp_path / "request.json", tmp_path / "output.npz")
    return dict(np.load(tmp_path / "output.npz"))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_feature_maps_match_the_original(run_reference, tmp_path, name):
    kwargs, seconds = CASES[name]
    config = DiscriminatorConfig.from_kwargs(kwargs)
    seed = cases.seed_of(name)
    audio = cases.case_input(config.sample_rate, seconds, seed, extra=0)  # [2, 1, T]: speech-like, music-like
    weights = tmp_path / "weights.pth"
    reference = run_original(run_reference, tmp_path, kwargs, seed, audio, weights)

    # Names, shapes and the parameter count are the original's.
    shapes = {k: tuple(v) for k, v in json.loads(str(reference["key_shapes"])).items()}
    assert convert.discriminator_torch_shapes(config) == shapes
    if config == DiscriminatorConfig():
        assert int(reference["n_parameters"]) == 42_519_760
        # The original's file describes the default discriminator, which this one is: no config needed.
        model = load_discriminator(weights)
    else:
        model = load_discriminator(weights, config=config)  # the original's file records default kwargs
    assert model.config == config

    graphdef, state = nnx.split(model)
    outputs = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))(state, audio)
    n_discriminators = len({k.split("/")[0] for k in reference if "/m" in k})
    assert len(outputs) == n_discriminators == len(config.periods) + len(config.rates) + len(config.fft_sizes)
    worst, report = 0.0, []
    for d, maps in enumerate(outputs):
        expected = [k for k in reference if k.startswith(f"d{d}/")]
        assert len(maps) == len(expected), (d, len(maps), len(expected))
        worst_d = 0.0
        for m, fmap in enumerate(maps):
            ref = reference[f"d{d}/m{m}"]
            ours = np.asarray(fmap)
            assert ours.shape == ref.shape, (d, m, ours.shape, ref.shape)
            scale = float(np.abs(ref).max())
            error = float(np.abs(ours - ref).max()) / scale
            assert error <= TOLERANCE, f"sub-discriminator {d}, feature map {m}: error {error:.2e} of scale {scale:.3g}"
            worst_d = max(worst_d, error)
        report.append(f"d{d}={worst_d:.1e}")
        worst = max(worst, worst_d)
    print(f"\n{name}: input {audio.shape}, worst feature-map error {worst:.2e} of scale ({', '.join(report)})")
