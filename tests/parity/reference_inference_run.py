"""Reference side of tests/parity/test_inference_parity.py (original's interpreter).

    reference_inference_run.py compress CASE MODEL_CASE WIN INPUT.npy SAMPLE_RATE OUT_DIR
        -> OUT_DIR/original.dac (the original's DACFile.save) and OUT_DIR/original.npz (its decompress)
    reference_inference_run.py decompress MODEL_CASE FILE.dac OUT.npy
        -> the original's decompress of a (jaxdac-written) DAC file
"""

import sys
from pathlib import Path

import numpy as np
import torch

import model_cases
from reference_inference import compress_decompress, dac_file_arrays
from reference_model import build_original


def model_for(case):
    return build_original(model_cases.presets()[case], model_cases.seed_of(case))


if sys.argv[1] == "compress":
    _, _, name, case, win, input_path, sr, out_dir = sys.argv
    out_dir = Path(out_dir)
    model = model_for(case)
    try:
        dac_file, audio = compress_decompress(model, np.load(input_path), int(sr), float(win))
        outputs = {"audio": audio}
    except RuntimeError as e:
        # The original's unchunked decompress fails for the 2,4,5,8 stride family (8 samples short);
        # keep its codes, which come before the failure.
        if "is invalid for input of size" not in str(e):
            raise
        from audiotools import AudioSignal

        with torch.no_grad():
            dac_file = model.compress(AudioSignal(torch.from_numpy(np.load(input_path)), int(sr)), win_duration=float(win))
        outputs = {}
    dac_file.save(out_dir / "original.dac")
    np.savez(out_dir / "original.npz", **outputs, **dac_file_arrays(dac_file, "file"))
else:
    import dac

    _, _, case, dac_path, out_path = sys.argv
    with torch.no_grad():
        recons = model_for(case).decompress(dac.DACFile.load(dac_path))
    np.save(out_path, recons.audio_data.numpy())
