"""The ORIGINAL's side of ``benchmarks/end_to_end.py`` (reference interpreter): one operation per process.

    .venv-reference/bin/python benchmarks/reference_end_to_end.py compress AUDIO.npy OUT.dac RESULT.json --win 5
    .venv-reference/bin/python benchmarks/reference_end_to_end.py decompress IN.dac OUT.npy RESULT.json

Builds ``dac.DAC`` (44.1 kHz) with the seeded weights of ``scripts/reference_model.py::build_original``,
then times ``model.compress(AudioSignal(audio, sample_rate), win_duration)`` or ``model.decompress(path)``
(wall clock, model construction excluded) and writes the seconds to RESULT.json. The parent process
measures this process's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("op", choices=["compress", "decompress"])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("result")
    parser.add_argument("--win", type=float, default=5.0)
    parser.add_argument("--sample-rate", type=int, default=48000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    import numpy as np
    import torch
    from audiotools import AudioSignal

    import model_cases
    from reference_model import build_original

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    model = build_original(model_cases.presets()["dac_44khz"], model_cases.seed_of("dac_44khz"))
    build = time.perf_counter() - start
    start = time.perf_counter()
    if args.op == "compress":
        signal = AudioSignal(torch.from_numpy(np.load(args.src)), args.sample_rate)
        dac_file = model.compress(signal, win_duration=args.win)
        seconds = time.perf_counter() - start
        dac_file.save(args.dst)
        extra = {"chunk_length": int(dac_file.chunk_length), "frames": int(dac_file.codes.shape[-1])}
    else:
        signal = model.decompress(args.src)
        seconds = time.perf_counter() - start
        np.save(args.dst, signal.audio_data.numpy())
        extra = {"samples": int(signal.audio_data.shape[-1])}
    Path(args.result).write_text(json.dumps({"seconds": seconds, "build_s": build, **extra}))


if __name__ == "__main__":
    main()
