"""Reference side of tests/parity/test_files_parity.py: the ORIGINAL writes and reads files.

Runs under the reference interpreter with PYTHONPATH=tests:scripts (``run_reference``)::

    reference_files.py checkpoint OUT_DIR SEED       random-config tiny model, saved by model.save(package=False)
                                                     as OUT_DIR/{weight_norm,parametrizations}.pth with the
                                                     saved arrays in OUT_DIR/<same>.npz; prints the kwargs as JSON
    reference_files.py compress OUT.dac OUT.npz WIN  DAC.compress of a stereo signal (WIN seconds per chunk, or
                                                     "none" for one chunk), saved by DACFile.save; values to OUT.npz
    reference_files.py load-dac IN.dac OUT.npz       DACFile.load, values to OUT.npz
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np
import torch

import signals
from make_fixtures_files import TINY_FILE_KWARGS, build_model, save_checkpoint, to_parametrizations

META = ("chunk_length", "original_length", "channels", "sample_rate", "padding", "dac_version")


def random_kwargs(seed: int) -> dict:
    """A small DAC configuration drawn from ``seed``: strides, widths and quantizer sizes all vary."""
    rng = np.random.default_rng(seed)
    n_blocks = int(rng.integers(2, 5))
    n_codebooks = int(rng.integers(1, 6))
    return dict(
        encoder_dim=int(rng.choice([1, 2, 4])),
        encoder_rates=[int(r) for r in rng.choice([2, 3, 4, 5], size=n_blocks)],
        latent_dim=int(rng.choice([4, 8, 12])),
        decoder_dim=int(2**n_blocks * rng.integers(1, 3)),
        decoder_rates=[int(r) for r in rng.choice([2, 3, 4, 5], size=n_blocks)],
        n_codebooks=n_codebooks,
        codebook_size=int(rng.choice([16, 50, 128])),
        codebook_dim=int(rng.integers(2, 7)),
        sample_rate=int(rng.choice([16000, 24000, 44100])),
    )


def checkpoint(out_dir: str, seed: str) -> None:
    out = Path(out_dir)
    model = build_model(random_kwargs(int(seed)), seed=int(seed))
    np.savez(out / "weight_norm.npz", **save_checkpoint(model, out / "weight_norm.pth"))
    to_parametrizations(model)
    np.savez(out / "parametrizations.npz", **save_checkpoint(model, out / "parametrizations.pth"))
    print(json.dumps(model.metadata["kwargs"]))


def dump(dac_file, out_npz: str) -> None:
    np.savez(out_npz, codes=dac_file.codes.numpy(), input_db=np.asarray(dac_file.input_db),
             **{k: getattr(dac_file, k) for k in META})
    print(json.dumps({k: type(getattr(dac_file, k)).__name__ for k in META}))


def compress(out_dac: str, out_npz: str, window: str) -> None:
    from audiotools import AudioSignal

    model = build_model(TINY_FILE_KWARGS, seed=11).eval()
    audio = signals.stereo(48000, 1.3, seed=4)[None]  # [1, 2, T] at 48 kHz: compress resamples to 44.1
    signal = AudioSignal(torch.from_numpy(audio), 48000)
    dac_file = model.compress(signal, win_duration=None if window == "none" else float(window))
    dac_file.save(out_dac)
    dump(dac_file, out_npz)


def load_dac(in_dac: str, out_npz: str) -> None:
    from dac.model.base import DACFile

    dump(DACFile.load(in_dac), out_npz)


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"checkpoint": checkpoint, "compress": compress, "load-dac": load_dac}[command](*args)
