"""Seamless vs legacy chunking at equal window sizes, and the original's (legacy) compress.

    .venv/bin/python benchmarks/seamless_vs_legacy.py [--seconds 20] [--windows 1 5]

Full-size 44.1 kHz architecture with seeded weights (released weights cannot be downloaded here; speed
and file size do not depend on the weight values). One mono speech-and-music signal; for each window:
compress time per second of audio (after a warm-up run that compiles), code frames, .dac file size,
and whether the codes equal whole-file coding. Writes benchmarks/results/seamless_vs_legacy.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "src")]

import numpy as np  # noqa: E402

import signals  # noqa: E402
from jaxdac import inference  # noqa: E402
from jaxdac.io.dacfile import write_dac_file  # noqa: E402
from model_parity import seeded_model  # noqa: E402

REFERENCE_PYTHON = REPO / ".venv-reference" / "bin" / "python"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--windows", type=float, nargs="+", default=[1.0, 5.0])
    args = parser.parse_args()
    sr = 44100
    audio = signals.mixture(sr, args.seconds, seed=4)[None, None]
    model = seeded_model("dac_44khz")
    whole = inference.compress(model, audio, sr, win_duration=None).codes

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        np.save(tmp / "input.npy", audio)
        reference = {}
        if REFERENCE_PYTHON.exists():
            env = dict(os.environ, PYTHONPATH=f"{REPO / 'tests'}:{REPO / 'scripts'}")
            subprocess.run([str(REFERENCE_PYTHON), str(Path(__file__).with_name("reference_seamless_vs_legacy.py")),
                            str(tmp / "input.npy"), str(sr), str(tmp / "ref.json"), *map(str, args.windows)],
                           check=True, env=env)
            reference = json.loads((tmp / "ref.json").read_text())
        for win in args.windows:
            for chunking in ("seamless", "legacy"):
                inference.compress(model, audio[..., : int(sr * (win + 1))], sr, win_duration=win, chunking=chunking)  # compile
                start = time.perf_counter()
                dac_file = inference.compress(model, audio, sr, win_duration=win, chunking=chunking)
                seconds = time.perf_counter() - start
                path = write_dac_file(dac_file, tmp / f"{chunking}{win}.dac")
                same = dac_file.codes.shape == whole.shape and bool(np.all(dac_file.codes == whole))
                rows.append((win, f"jaxdac {chunking}", seconds, dac_file.frames, path.stat().st_size, same))
            ref = reference.get(str(win))
            if ref:
                rows.append((win, "original (legacy)", ref["seconds"], ref["frames"], ref["bytes"], None))

    nominal = whole.shape[-1]
    lines = [
        f"Compress {args.seconds:.0f} s of mono 44.1 kHz audio, full-size 44.1 kHz model (seeded weights), "
        f"2-core CPU, load average {os.getloadavg()[0]:.1f}. Nominal frames (whole-file coding): {nominal}.",
        "",
        "| window (s) | implementation | s per s of audio | frames | extra frames | .dac bytes | codes = whole-file |",
        "|---:|---|---:|---:|---:|---:|---|",
    ]
    for win, name, seconds, frames, size, same in rows:
        verdict = "-" if same is None else ("yes" if same else "no")
        lines.append(f"| {win:g} | {name} | {seconds / args.seconds:.3f} | {frames} | {100 * (frames / nominal - 1):+.1f}% "
                     f"| {size} | {verdict} |")
    table = "\n".join(lines)
    print(table)
    out = REPO / "benchmarks" / "results" / "seamless_vs_legacy.md"
    out.write_text(table + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
