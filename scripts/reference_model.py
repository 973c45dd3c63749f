"""Running the ORIGINAL DAC on seeded weights: shared by the fixture script and the parity suite.

Imported only under the reference interpreter (torch, dac).
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch

import model_cases


def build_original(config, seed: int, save_path=None):
    """``dac.DAC`` with the config's kwargs and seeded weights. With ``save_path`` the weights make a
    round trip through the original's own checkpoint format (``model.save(package=False)``)."""
    import dac

    model = dac.DAC(**config.to_kwargs())
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    weights = model_cases.seeded_state_dict(shapes, seed)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    if save_path is not None:
        model.save(str(save_path), package=False)
        model = dac.DAC.load(str(save_path))
    return model.eval()


@torch.no_grad()
def run_original(model, x: np.ndarray, per_n_channels: int | None = None) -> dict[str, np.ndarray]:
    """Everything the parity checks compare, as numpy arrays.

    ``per_n_channels``: for each n_quantizers the first that many channels of z are kept (fixtures);
    ``None`` keeps all of z (live parity).
    """
    audio = model.preprocess(torch.from_numpy(x), model.sample_rate)
    z, codes, latents, commitment, codebook = model.encode(audio)
    decoded = model.decode(z)
    from_codes = model.quantizer.from_codes(codes)
    from_latents = model.quantizer.from_latents(latents)
    out = {
        "z": z.numpy(),
        "codes": codes.numpy().astype(np.int16),
        "latents": latents.numpy(),
        "commitment_loss": np.float32(commitment.item()),
        "codebook_loss": np.float32(codebook.item()),
        "audio": decoded.numpy(),
        "from_codes_z": from_codes[0].numpy(),
        "from_codes_z_p": from_codes[1].numpy(),
        "from_latents_z": from_latents[0].numpy(),
        "from_latents_codes": from_latents[2].numpy().astype(np.int16),
        "delay": np.int64(model.delay),
        "hop_length": np.int64(model.hop_length),
        "output_length_1s": np.int64(model.get_output_length(model.sample_rate)),
        "n_parameters": np.int64(sum(p.numel() for p in model.parameters())),
    }
    encoded = model.encoder(audio)
    keep = slice(None) if per_n_channels is None else slice(0, per_n_channels)
    for n in range(1, model.n_codebooks + 1):
        z_n, codes_n, latents_n, _, _ = model.quantizer(encoded, n)
        out[f"z_n{n}"] = z_n[:, keep].numpy()
        out[f"codes_n{n}"] = codes_n.numpy().astype(np.int16)
    return out
