"""The ORIGINAL discriminator on seeded weights: shared by scripts/make_fixtures_discriminator.py and the
live parity suite (tests/parity/test_discriminator_parity.py). Runs only under the reference interpreter.

As a script::

    reference_discriminator.py REQUEST.json OUTPUT.npz

``REQUEST.json`` holds ``{"kwargs": {...}, "seed": int, "input": "in.npz" (key "audio", [B, 1, T]),
"save": "weights.pth" or null}``. With ``save`` the seeded weights are written by the original's own
``Discriminator.save(path, package=False)``, and for a default config read back with
``Discriminator.load`` before running. ``OUTPUT.npz`` gets every feature map as ``d{i}/m{j}``, the
parameter count and the state-dict keys and shapes.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: discriminator_cases, model_cases, signals

import discriminator_cases  # noqa: E402


def build_original(kwargs: dict, seed: int, save_path=None):
    """``dac.model.Discriminator(**kwargs)`` with seeded weights; with ``save_path`` saved by the original."""
    from dac.model.discriminator import Discriminator

    model = Discriminator(**kwargs)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = discriminator_cases.seeded_state_dict(shapes, seed)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    if save_path is not None:
        model.save(str(save_path), package=False)
        if _plain(kwargs) == _plain({}):
            # The original's loader rebuilds from the file's kwargs, which its save always records as the
            # defaults: only a default discriminator survives that round trip, so only that one is reloaded.
            model = Discriminator.load(str(save_path))
    return model.eval()


def _plain(kwargs: dict) -> dict:
    """``kwargs`` completed with the constructor's defaults, tuples as lists (comparable)."""
    import inspect

    from dac.model.discriminator import Discriminator

    full = {k: v.default for k, v in inspect.signature(Discriminator).parameters.items()}
    full.update(kwargs)
    return json.loads(json.dumps(full))


@torch.no_grad()
def run_original(model, audio: np.ndarray) -> list[list[np.ndarray]]:
    return [[f.numpy() for f in maps] for maps in model(torch.from_numpy(audio))]


def describe(model) -> dict[str, np.ndarray]:
    state = model.state_dict()
    return {
        "n_parameters": np.int64(sum(p.numel() for p in model.parameters())),
        # {key: shape} in the original's state-dict order, as compact JSON.
        "key_shapes": np.array(json.dumps({k: list(v.shape) for k, v in state.items()}, separators=(",", ":"))),
    }


def main(request_path: str, output_path: str) -> None:
    request = json.loads(Path(request_path).read_text())
    model = build_original(request["kwargs"], int(request["seed"]), request.get("save"))
    audio = np.load(request["input"])["audio"]
    out = describe(model)
    for d, maps in enumerate(run_original(model, audio)):
        for m, fmap in enumerate(maps):
            out[f"d{d}/m{m}"] = fmap
    np.savez(output_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:])
