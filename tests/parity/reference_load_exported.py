"""Load files written by jaxdac's save_original with the ORIGINAL's loaders and run them (reference only).

    reference_load_exported.py FOLDER      # FOLDER/dac/weights.pth, FOLDER/discriminator/weights.pth, audio.npy

Writes FOLDER/outputs.npz: the codes of ``DAC.load(...)`` on the audio and every feature map of
``Discriminator.load(...)`` on it. The original loads non-strictly, so every state-dict key is checked to
have been used.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch


@torch.no_grad()
def main(folder: Path):
    import dac

    generator = dac.DAC.load(str(folder / "dac" / "weights.pth")).eval()
    discriminator = dac.model.Discriminator.load(str(folder / "discriminator" / "weights.pth")).eval()
    for model, file in ((generator, "dac"), (discriminator, "discriminator")):
        stored = torch.load(folder / file / "weights.pth", weights_only=True)["state_dict"]
        own = model.state_dict()
        assert set(stored) == set(own), sorted(set(stored) ^ set(own))[:5]
        for k in own:
            assert torch.equal(own[k], stored[k]), k
    audio = torch.from_numpy(np.load(folder / "audio.npy"))
    x = generator.preprocess(audio, generator.sample_rate)
    _, codes, _, _, _ = generator.encode(x)
    out = {"codes": codes.numpy().astype(np.int32)}
    fmaps = discriminator(audio)
    n = 0
    for d, maps in enumerate(fmaps):
        for m, fmap in enumerate(maps):
            out[f"fmap_{d}_{m}"] = fmap.numpy()
            n += 1
    out["n_fmaps"] = np.int64(n)
    np.savez(folder / "outputs.npz", **out)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
