"""Reference side of benchmarks/seamless_vs_legacy.py: the original's compress timed per window.

    reference_seamless_vs_legacy.py INPUT.npy SAMPLE_RATE OUT.json WINDOW...
"""

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import model_cases
from reference_model import build_original

torch.set_num_threads(os.cpu_count() or 1)
audio_path, sr, out_path, *windows = sys.argv[1:]
audio = np.load(audio_path)
model = build_original(model_cases.presets()["dac_44khz"], model_cases.seed_of("dac_44khz"))
from audiotools import AudioSignal

results = {}
with torch.no_grad(), tempfile.TemporaryDirectory() as tmp:
    for win in windows:
        signal = AudioSignal(torch.from_numpy(audio.copy()), int(sr))
        start = time.perf_counter()
        dac_file = model.compress(signal, win_duration=float(win))
        seconds = time.perf_counter() - start
        path = dac_file.save(Path(tmp) / f"w{win}.dac")
        results[win] = {"seconds": seconds, "frames": int(dac_file.codes.shape[-1]), "bytes": path.stat().st_size}
Path(out_path).write_text(json.dumps(results))
