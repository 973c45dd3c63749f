"""End-to-end compress / decompress through the public API, jaxdac vs the original, side by side.

    .venv/bin/python benchmarks/end_to_end.py [--minutes 1] [--channels 2] [--wins 5] [--repeats 0]
        [--pipelines legacy seamless original] [--threads 2] [--out-dir benchmarks/results] [--name end_to_end]

Full-size 44.1 kHz architecture with seeded weights on both sides (``tests/model_parity.py::seeded_model``
and ``scripts/reference_model.py::build_original``); the input is tests/signals.py's music | speech at
48 kHz, stereo or mono (both sides resample it to 44.1 kHz). Three pipelines:

* jaxdac legacy: ``jaxdac.compress(model, audio, 48000, win, chunking="legacy")`` and ``jaxdac.decompress``
  (the original's overlapping unpadded chunks, byte-compatible files: the same work as the original);
* jaxdac seamless (the default): ``chunking="seamless"``, whole-file codes computed window by window;
* the original: ``model.compress(AudioSignal(audio, 48000), win_duration=win)`` / ``model.decompress``
  (``benchmarks/reference_end_to_end.py`` under the reference interpreter, ``torch.set_num_threads``).

Each (window, operation, pipeline) runs in a fresh process, the pipelines one after the other for each
window and operation, so load that comes and goes falls on all of them. In the process: the model is
built (not timed), then the API call runs ``1 + --repeats`` times. The first call is what one command
costs (for jaxdac: tracing and compiling the chunk functions, with no compilation cache); the later ones
are the steady state of a program that codes many files (their median is reported as "warm"). Also
reported: the process's peak resident memory (``os.wait4``) and the load average before and after.
Codes of jaxdac legacy and of the original are compared.

The original needs about 2.5 s of 2-core CPU per second of mono audio at 5 s windows, so 10 minutes of
stereo take it close to an hour; the default is 1 minute. Writes ``end_to_end.md`` and ``end_to_end.csv``
to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]
from common import machine, reference_python, run_child, write_results  # noqa: E402

SAMPLE_RATE = 48000


def child(op: str, src: str, dst: str, result: str, chunking: str, win: float, repeats: int) -> None:
    """jaxdac's side, in a fresh process."""
    import jaxdac
    from model_parity import seeded_model

    start = time.perf_counter()
    model = seeded_model("dac_44khz")
    build = time.perf_counter() - start
    times = []
    for _ in range(1 + repeats):
        start = time.perf_counter()
        if op == "compress":
            out = jaxdac.compress(model, np.load(src), SAMPLE_RATE, win, chunking=chunking)
        else:
            out = jaxdac.decompress(model, jaxdac.read_dac_file(src), win_duration=win)
        times.append(time.perf_counter() - start)
    if op == "compress":
        jaxdac.write_dac_file(out, dst, overwrite=True)
        extra = {"chunk_length": int(out.chunk_length), "frames": int(out.codes.shape[-1])}
    else:
        np.save(dst, out)
        extra = {"samples": int(out.shape[-1])}
    Path(result).write_text(json.dumps({"times": times, "build_s": build, **extra}))


def make_audio(minutes: float, channels: int = 2) -> np.ndarray:
    import signals

    piece = signals.stereo(SAMPLE_RATE, 10.0, seed=3)[:channels]  # [C, 480000]
    n = int(minutes * 60 * SAMPLE_RATE)
    return np.tile(piece, (1, -(-n // piece.shape[1])))[None, :, :n].astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--channels", type=int, choices=(1, 2), default=2)
    parser.add_argument("--wins", type=float, nargs="+", default=[5.0], help="window seconds, each a set of rows")
    parser.add_argument("--repeats", type=int, default=0, help="timed calls after the first, in the same process")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pipelines", nargs="+", default=["legacy", "seamless", "original"])
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default="end_to_end", help="the results' file name, NAME.md and NAME.csv")
    parser.add_argument("--child", nargs=7, metavar=("OP", "SRC", "DST", "RESULT", "CHUNKING", "WIN", "REPEATS"))
    args = parser.parse_args()
    if args.child:
        op, src, dst, result, chunking, win, repeats = args.child
        return child(op, src, dst, result, chunking, float(win), int(repeats))

    python_ref = str(reference_python()) if "original" in args.pipelines else ""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    env["JAXDAC_COMPILATION_CACHE"] = "off"  # the first call compiles, as a first run would
    work = Path(tempfile.mkdtemp(prefix="end_to_end_"))
    audio_path = work / "audio.npy"
    audio = make_audio(args.minutes, args.channels)
    np.save(audio_path, audio)
    audio_s = audio.shape[-1] / SAMPLE_RATE
    rows, agreement = [], []
    begin = time.perf_counter()
    for win in args.wins:
        for op in ("compress", "decompress"):
            for name in args.pipelines:  # the pipelines one after the other for each window and operation
                dac_path, out_path = work / f"{name}_{win:g}.dac", work / f"{name}_{win:g}.npy"
                src, dst = (audio_path, dac_path) if op == "compress" else (dac_path, out_path)
                result = work / f"{name}_{op}_{win:g}.json"
                if name == "original":
                    cmd = [python_ref, str(REPO / "benchmarks" / "reference_end_to_end.py"), op, str(src), str(dst),
                           str(result), "--win", str(win), "--sample-rate", str(SAMPLE_RATE),
                           "--threads", str(args.threads), "--repeats", str(args.repeats)]
                else:
                    cmd = [sys.executable, __file__, "--child", op, str(src), str(dst), str(result), name, str(win),
                           str(args.repeats)]
                load = os.getloadavg()[0]
                out, peak = run_child(cmd, result, env, args.timeout)
                times = out["times"]
                row = {"win": win, "pipeline": name, "op": op, "first_s": times[0],
                       "warm_s": float(np.median(times[1:])) if len(times) > 1 else float("nan"),
                       "runs": len(times) - 1, "peak_rss_mib": peak, "model_build_s": out["build_s"],
                       "load_before": load, "load_after": os.getloadavg()[0]}
                rows.append(row)
                print(json.dumps(row), flush=True)
        if {"legacy", "original"} <= set(args.pipelines):
            from jaxdac.io.dacfile import read_dac_file

            a = np.asarray(read_dac_file(work / f"legacy_{win:g}.dac").codes)
            b = np.asarray(read_dac_file(work / f"original_{win:g}.dac").codes)
            same = a.shape == b.shape and bool((a == b).all())
            frac = float((a == b).mean()) if a.shape == b.shape else float("nan")
            agreement.append(f"window {win:g} s: codes of jaxdac legacy vs the original, shape {a.shape} vs {b.shape}, "
                             f"{'identical' if same else f'{frac:.4%} equal'}.")

    by = {(r["win"], r["pipeline"], r["op"]): r for r in rows}
    warm = args.repeats > 0
    channels = "stereo" if args.channels == 2 else "mono"
    lines = [
        "# End-to-end compress / decompress (44.1 kHz model, seeded weights, CPU)",
        "",
        f"`benchmarks/end_to_end.py {' '.join(sys.argv[1:])}` on {machine()}. Input: {args.minutes:g} min of "
        f"{channels} {SAMPLE_RATE} Hz audio ({audio_s:.0f} s, resampled to 44.1 kHz by both sides); torch with "
        f"{args.threads} threads. Each row is a fresh process (the pipelines one after the other for each window "
        "and operation); first = the first API call (jaxdac's includes tracing and compiling, no compilation "
        f"cache)" + (f"; warm = median of the {args.repeats} calls after it in the same process" if warm else "")
        + ". x real time = audio seconds / wall seconds; ratio = jaxdac / the original; load = 1-minute load "
        "average before / after the row.",
        "",
        "| window | pipeline | operation | first (s) | ratio | " + ("warm (s) | x real time | ratio | " if warm else "")
        + "peak RSS (MiB) | load |",
        "|---:|---|---|---:|---:|" + ("---:|---:|---:|" if warm else "") + "---:|---:|",
    ]
    for r in rows:
        ref = by.get((r["win"], "original", r["op"]))
        first_ratio = f"**{r['first_s'] / ref['first_s']:.2f}**" if ref else "-"
        line = f"| {r['win']:g} s | {r['pipeline']} | {r['op']} | {r['first_s']:.1f} | {first_ratio} | "
        if warm:
            warm_ratio = f"**{r['warm_s'] / ref['warm_s']:.2f}**" if ref else "-"
            line += f"{r['warm_s']:.1f} | {audio_s / r['warm_s']:.2f} | {warm_ratio} | "
        lines.append(line + f"{r['peak_rss_mib']:.0f} | {r['load_before']:.1f} / {r['load_after']:.1f} |")
    lines += ["", *agreement, "", f"Total benchmark wall time: {(time.perf_counter() - begin) / 60:.1f} min.", ""]
    write_results(args.out_dir, args.name, "\n".join(lines), rows)


if __name__ == "__main__":
    main()
