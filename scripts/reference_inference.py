"""The ORIGINAL's compress / decompress on numpy audio (reference interpreter only)."""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch


@torch.no_grad()
def compress_decompress(model, audio: np.ndarray, sample_rate: int, win_duration: float, n_quantizers=None):
    """Returns (DACFile of the original, decompressed audio [B, C, T] numpy)."""
    from audiotools import AudioSignal

    signal = AudioSignal(torch.from_numpy(audio.copy()), sample_rate)
    dac_file = model.compress(signal, win_duration=win_duration, n_quantizers=n_quantizers)
    recons = model.decompress(dac_file)
    return dac_file, recons.audio_data.numpy()


def dac_file_arrays(dac_file, prefix: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.codes": dac_file.codes.numpy().astype(np.int16),
        f"{prefix}.chunk_length": np.int64(dac_file.chunk_length),
        f"{prefix}.original_length": np.int64(dac_file.original_length),
        f"{prefix}.input_db": np.asarray(dac_file.input_db.numpy(), np.float32),
        f"{prefix}.padding": np.bool_(dac_file.padding),
    }
