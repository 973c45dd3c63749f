"""The ORIGINAL's side of ``benchmarks/end_to_end.py`` (reference interpreter): one operation per process.

    .venv-reference/bin/python benchmarks/reference_end_to_end.py compress AUDIO.npy OUT.dac RESULT.json --win 5
    .venv-reference/bin/python benchmarks/reference_end_to_end.py decompress IN.dac OUT.npy RESULT.json

Builds ``dac.DAC`` (44.1 kHz) with the seeded weights of ``scripts/reference_model.py::build_original``,
then times ``model.compress(AudioSignal(audio, sample_rate), win_duration)`` or ``model.decompress(path)``
(wall clock, model construction excluded), ``1 + --repeats`` times, and writes the seconds of each call to
RESULT.json. The parent process measures this process's peak RSS.
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
    parser.add_argument("--repeats", type=int, default=0)
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
    times = []
    for _ in range(1 + args.repeats):
        start = time.perf_counter()
        if args.op == "compress":
            signal = AudioSignal(torch.from_numpy(np.load(args.src)), args.sample_rate)
            out = model.compress(signal, win_duration=args.win)
        else:
            out = model.decompress(args.src)
        times.append(time.perf_counter() - start)
    if args.op == "compress":
        out.save(args.dst)
        extra = {"chunk_length": int(out.chunk_length), "frames": int(out.codes.shape[-1])}
    else:
        np.save(args.dst, out.audio_data.numpy())
        extra = {"samples": int(out.audio_data.shape[-1])}
    Path(args.result).write_text(json.dumps({"times": times, "build_s": build, **extra}))


if __name__ == "__main__":
    main()
