"""``jaxdac evaluate --weights`` on 20 generated files at three bitrates, timed: the README's example run.

    PYTHONPATH=src:tests .venv/bin/python benchmarks/evaluate_bitrate.py [--files 20] [--seconds 3]
        [--n-quantizers 3,6,9] [--model dac_44khz] [--speech]

Writes seeded full-size weights (tests/model_cases.py's recipe; no released weights can be downloaded on
these machines, so the reconstructions are those of a random model, not the paper's numbers), generates
``--files`` clips (speech, music, mixtures, silence-padded speech, stereo; 44.1 and 48 kHz), and runs
``jaxdac evaluate --weights W DATA -o OUT --n-quantizers ...`` as a command with an empty compilation
cache. Copies its summary table, JSON, CSV and plot to benchmarks/results/evaluate_bitrate.{md,json,csv,png}
with the wall time and the machine's load.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]
RESULTS = REPO / "benchmarks" / "results"
KINDS = ("speech", "music", "mixture", "silence_padded", "stereo")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--n-quantizers", default="3,6,9")
    parser.add_argument("--model", default="dac_44khz", help="preset of the seeded weights")
    parser.add_argument("--speech", action="store_true", help="pass --speech (PESQ, STOI)")
    args = parser.parse_args()

    import soundfile as sf

    import metrics_cases as cases
    from jaxdac.weights import convert
    from model_parity import seeded_model

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        weights = tmp / f"{args.model}.safetensors"
        convert.save(seeded_model(args.model), weights)
        data = tmp / "data"
        data.mkdir()
        audio = 0.0
        for i in range(args.files):
            kind, rate = KINDS[i % len(KINDS)], (44100, 48000)[i % 2]
            seconds = args.seconds * (0.6 if kind == "silence_padded" else 1.0)  # + 2 x 1/3 of silence
            _, _, reference, rate = cases.pair(kind, rate, seconds, 300 + i)
            sf.write(data / f"{i:02d}_{kind}_{rate // 1000}k.wav", reference.T, rate, subtype="PCM_16")
            audio += reference.shape[-1] / rate
        out = tmp / "out"
        command = [sys.executable, "-m", "jaxdac", "evaluate", "--weights", str(weights), str(data), "-o", str(out),
                   "--n-quantizers", args.n_quantizers] + (["--speech"] if args.speech else [])
        env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "JAXDAC_COMPILATION_CACHE": str(tmp / "xla")}
        load_before = os.getloadavg()[0]
        start = time.perf_counter()
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - start
        load_after = os.getloadavg()[0]
        sys.stderr.write(proc.stderr)
        if proc.returncode != 0:
            sys.exit(f"jaxdac evaluate failed with status {proc.returncode}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(out / "summary.json", RESULTS / "evaluate_bitrate.json")
        shutil.copy(out / "metrics.csv", RESULTS / "evaluate_bitrate.csv")
        if (out / "metrics_vs_bitrate.png").exists():
            shutil.copy(out / "metrics_vs_bitrate.png", RESULTS / "evaluate_bitrate.png")

    table = "\n".join(line for line in proc.stdout.splitlines() if line.startswith("|") or line.startswith("mean"))
    text = "\n".join([
        "# jaxdac evaluate --weights: quality against bitrate",
        "",
        f"`jaxdac evaluate --weights {args.model}.safetensors DATA -o OUT --n-quantizers {args.n_quantizers}` on "
        f"{args.files} generated clips ({audio:.1f} s of audio: speech, music, mixtures, silence-padded speech, "
        "stereo; 44.1 and 48 kHz, 16-bit WAV). The weights are SEEDED RANDOM weights of the full-size "
        f"`{args.model}` model (no released weights can be downloaded on this machine): the numbers show the "
        "command working, not DAC's quality. Each file is encoded once and decoded at each n_quantizers.",
        "",
        f"Wall time of the command: **{wall:.0f} s** ({wall / audio:.2f} s per second of audio, "
        f"{wall / (audio * len(args.n_quantizers.split(','))):.2f} per second of audio and bitrate), empty "
        f"compilation cache, on {platform.processor() or platform.machine()} with {os.cpu_count()} cores shared "
        f"with other jobs (load average {load_before:.1f} before, {load_after:.1f} after).",
        "",
        table,
        "",
        "Plot: `evaluate_bitrate.png`; every file's numbers: `evaluate_bitrate.csv`; summary: `evaluate_bitrate.json`.",
        "",
    ])
    print(text)
    (RESULTS / "evaluate_bitrate.md").write_text(text)


if __name__ == "__main__":
    main()
