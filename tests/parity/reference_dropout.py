"""How many codebooks the ORIGINAL's quantiser dropout keeps per item, over many training passes.

    reference_dropout.py OUT_DIR BATCH N_CODEBOOKS P DRAWS       # writes OUT_DIR/counts.npy [DRAWS, BATCH]

The count is not returned by the original, so it is read off the output: in training mode each item's
quantised latent is the sum of the first k codebooks' contributions; k is the prefix sum (of the
per-codebook contributions of the same pass, recomputed in eval mode from the codes) that it equals,
1..N_CODEBOOKS (an item that keeps all codebooks reads N_CODEBOOKS).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch


@torch.no_grad()
def main(out: Path, batch: int, n_codebooks: int, p: float, draws: int):
    from dac.nn.quantize import ResidualVectorQuantize

    torch.manual_seed(0)
    rvq = ResidualVectorQuantize(input_dim=16, n_codebooks=n_codebooks, codebook_size=32, codebook_dim=4,
                                 quantizer_dropout=p)
    z = torch.randn(batch, 16, 5)
    rvq.eval()
    _, codes, _, _, _ = rvq(z)
    contributions = [rvq.quantizers[i].out_proj(rvq.quantizers[i].codebook(codes[:, i]).transpose(1, 2))
                     for i in range(n_codebooks)]
    prefixes = torch.stack([sum(contributions[: k + 1]) for k in range(n_codebooks)])  # [N, B, D, T]
    rvq.train()
    counts = np.zeros((draws, batch), np.int64)
    for d in range(draws):
        z_q = rvq(z)[0]
        err = (prefixes - z_q[None]).abs().amax(dim=(2, 3))  # [N, B]
        k = err.argmin(dim=0) + 1
        assert (err.min(dim=0).values < 1e-5).all()
        counts[d] = k.numpy()
    np.save(out / "counts.npy", counts)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
