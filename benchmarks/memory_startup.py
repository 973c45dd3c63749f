"""Peak memory of ``jaxdac encode`` / ``jaxdac decode`` on long stereo files, and start-up time with an
empty vs a warm persistent compilation cache.

    .venv/bin/python benchmarks/memory_startup.py [--scaling-model tiny] [--minutes 1 10 60]
        [--full-minutes 1] [--out benchmarks/results/memory_startup.md]

No released weights can be downloaded here, so the models carry seeded random weights
(``tests/model_parity.py::seeded_model``) saved as .safetensors and passed with ``--weights``. Memory and
speed do not depend on the weights' values.

* Memory: each command runs as a fresh ``python -m jaxdac`` process on a stereo 44.1 kHz 16-bit WAV
  (10 s of tests/signals.py music | speech, repeated) at ``--win-duration 5`` (encode and decode;
  ``--chunking`` seamless unless told otherwise); its peak resident set
  size is the kernel's ``ru_maxrss`` for that one child (``os.wait4``). The full-size 44.1 kHz model
  codes about 1 s of stereo audio per 1.6 s (encode) and 3.4 s (decode) on a 2-core CPU, so 60 minutes
  would take hours: the length scaling (1, 10, 60 min) runs with ``--scaling-model`` (default ``tiny``,
  same algorithm and buffers, small convolutions) and the full-size model runs ``--full-minutes``
  (default 1). The compilation cache is off for these runs so that they do not depend on each other.
* Start-up: the full-size model encodes (then decodes) a short file twice with the same, initially
  empty, cache folder (``JAXDAC_COMPILATION_CACHE``); the difference is compile time saved. Best of
  ``--repeats``, each with a fresh folder.

Prints markdown tables and writes them to ``--out``.
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
SAMPLE_RATE = 44100
WIN = 5.0
FULL = "dac_44khz"
CHUNKING = "seamless"  # set from --chunking

sys.path.insert(0, str(REPO / "tests"))


def write_wav(path: Path, minutes: float, channels: int = 2) -> Path:
    """Stereo (or mono) 16-bit WAV of ``minutes``, written in 10 s blocks (no long buffer here)."""
    import signals
    import soundfile as sf

    piece = signals.stereo(SAMPLE_RATE, 10.0, seed=0)[:channels].T  # [441000, C]
    n = int(minutes * 60 * SAMPLE_RATE)
    with sf.SoundFile(path, "w", SAMPLE_RATE, channels, "PCM_16", format="WAV") as f:
        for start in range(0, n, len(piece)):
            f.write(piece[: n - start])
    return path


def save_weights(case: str, folder: Path) -> Path:
    from model_parity import seeded_model

    from jaxdac.weights import convert

    path = folder / f"{case}.safetensors"
    if not path.exists():
        convert.save(seeded_model(case), path)
    return path


def jaxdac(args: list, cache: str = "off", timeout: float = 3600) -> tuple[float, float]:
    """Run ``python -m jaxdac *args`` in a fresh process: ``(wall seconds, peak RSS MiB)``."""
    env = dict(os.environ, JAXDAC_COMPILATION_CACHE=cache)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO / "src"), os.environ.get("PYTHONPATH")) if p)
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "jaxdac", *map(str, args)], env=env,
                                stdout=subprocess.DEVNULL, stderr=err)
        # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the maximum over all children).
        deadline = start + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode:
            err.seek(0)
            raise SystemExit(f"jaxdac {' '.join(map(str, args))} failed ({proc.returncode}):\n{err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024  # Linux reports KiB


def audio_mib(minutes: float, channels: int = 2) -> float:
    return minutes * 60 * SAMPLE_RATE * channels * 4 / 2**20  # one float32 copy


def memory_rows(model: str, weights: Path, minutes: float, work: Path) -> list[tuple]:
    wav = work / f"in_{minutes:g}min.wav"
    if not wav.exists():
        write_wav(wav, minutes)
    codes, audio = work / f"codes_{model}", work / f"audio_{model}"
    rows = []
    wall, peak = jaxdac(["encode", wav, "-o", codes, "--weights", weights, "--win-duration", WIN, "--overwrite",
                         "--chunking", CHUNKING])
    rows.append(("encode", model, minutes, peak, wall))
    print(f"  encode {model:>9} {minutes:>4g} min: {peak:8.0f} MiB  {wall:7.1f} s", flush=True)
    wall, peak = jaxdac(["decode", codes / wav.with_suffix(".dac").name, "-o", audio, "--weights", weights,
                         "--win-duration", WIN, "--overwrite"])
    rows.append(("decode", model, minutes, peak, wall))
    print(f"  decode {model:>9} {minutes:>4g} min: {peak:8.0f} MiB  {wall:7.1f} s", flush=True)
    for folder in (codes, audio):
        shutil.rmtree(folder, ignore_errors=True)
    return rows


def startup_rows(weights: Path, seconds: float, repeats: int, work: Path) -> list[tuple]:
    """Encode then decode a short mono file twice with one cache folder, empty at first; ``repeats``
    times with a fresh folder. Returns ``(run, encode seconds, decode seconds, cache entries)`` with the
    best (least disturbed) time of the repeats."""
    wav = write_wav(work / "short.wav", seconds / 60, channels=1)
    times: dict[str, list[tuple[float, float, int]]] = {}
    for repeat in range(repeats):
        cache = work / f"xla-cache-{repeat}"
        for run in ("first (empty cache)", "second (warm cache)"):
            enc, _ = jaxdac(["encode", wav, "-o", work / "s", "--weights", weights, "--win-duration", WIN,
                             "--overwrite"], cache=str(cache))
            dec, _ = jaxdac(["decode", work / "s" / "short.dac", "-o", work / "s", "--weights", weights,
                             "--overwrite"], cache=str(cache))
            entries = len(list(cache.iterdir()))
            times.setdefault(run, []).append((enc, dec, entries))
            print(f"  {run}: encode {enc:.1f} s, decode {dec:.1f} s, {entries} cache entries", flush=True)
    return [(run, min(t[0] for t in ts), min(t[1] for t in ts), ts[-1][2]) for run, ts in times.items()]


def machine() -> str:
    import jax

    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, Python "
            f"{platform.python_version()}, jax {jax.__version__} ({jax.default_backend()})")


def report(args, memory: list[tuple], startup: list[tuple], seconds: float) -> str:
    lines = [
        "# Peak memory and start-up time of the jaxdac command line",
        "",
        f"Measured by `benchmarks/memory_startup.py` ({' '.join(sys.argv[1:]) or 'default options'}) on "
        f"{machine()}, {time.strftime('%Y-%m-%d')}. Seeded random weights (no released weights can be downloaded "
        "here; memory and speed do not depend on the values).",
        "",
        f"## Peak memory, stereo 44.1 kHz 16-bit WAV, `--win-duration {WIN:g}`, `--chunking {CHUNKING}`",
        "",
        "Peak resident set size of one fresh `python -m jaxdac` process (kernel `ru_maxrss`), persistent "
        f"compilation cache off. `{FULL}` is the full-size released 44.1 kHz architecture (8 kbps, 9 codebooks); "
        f"`{args.scaling_model}` is the test preset (same algorithm and buffers, tiny convolutions), used for long "
        "files because the full model codes stereo audio slower than real time on this CPU. "
        "One float32 copy of the audio is given for scale.",
        "",
        "| command | model | audio | one float32 copy | peak RSS | wall time |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for command, model, minutes, peak, wall in memory:
        lines.append(f"| {command} | {model} | {minutes:g} min | {audio_mib(minutes):,.0f} MiB | {peak:,.0f} MiB | "
                     f"{wall:,.1f} s |")
    by = {(c, m, mins): peak for c, m, mins, peak, _ in memory}
    notes = []
    for command in ("encode", "decode"):
        small = sorted((k for k in by if k[0] == command and k[1] == args.scaling_model), key=lambda k: k[2])
        full = [k for k in by if k[0] == command and k[1] == FULL]
        if len(small) > 1:
            first, longest = small[0], small[-1]
            growth = by[longest] - by[first]
            notes.append(
                f"* {command}: from {first[2]:g} to {longest[2]:g} min the peak changes by {growth:+,.0f} MiB "
                f"({by[longest] / by[first]:.2f}x) while the audio grows {longest[2] / first[2]:g}x "
                f"(+{audio_mib(longest[2]) - audio_mib(first[2]):,.0f} MiB as float32)."
            )
        if small and full:
            longest = small[-1]
            base = (command, args.scaling_model, full[0][2])
            if base in by:
                overhead = by[full[0]] - by[base]
                notes.append(
                    f"* {command}: the full-size model needs {overhead:,.0f} MiB more than `{args.scaling_model}` at "
                    f"{full[0][2]:g} min (weights, compiled code, window activations; independent of length), "
                    f"so {longest[2]:g} min with the full model would peak near "
                    f"{by[longest] + overhead:,.0f} MiB (estimate, not measured)."
                )
    if notes:
        lines += ["", *notes]
    if startup:
        lines += [
            "",
            f"## Start-up: first vs second run, {seconds:g} s mono file, `{FULL}`",
            "",
            "Wall time of a whole `python -m jaxdac` process (interpreter and JAX start, weights load, compile, "
            "code, write) with one cache folder (`JAXDAC_COMPILATION_CACHE`), empty before the first run; best of "
            f"{args.repeats} repeats, each with a fresh folder.",
            "",
            "| run | encode | decode | cache entries after |",
            "|---|---:|---:|---:|",
        ]
        for run, enc, dec, entries in startup:
            lines.append(f"| {run} | {enc:.1f} s | {dec:.1f} s | {entries} |")
        (_, e1, d1, _), (_, e2, d2, _) = startup
        lines += [
            "",
            f"The warm cache saves {e1 - e2:.1f} s of encode and {d1 - d2:.1f} s of decode start-up. A file no longer "
            "than one window plus its context is coded in one piece, by a program compiled for its length, so the "
            "cache serves it again only for a file of the same length; longer files are coded in fixed-shape windows compiled once per window "
            "size and `--chunk-batch`, which every later file reuses.",
        ]
    load = os.getloadavg()
    lines += ["", f"Load average at the end: {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1 / 5 / 15 min) on "
              f"{os.cpu_count()} cores; wall times include any contention, peak memory does not depend on it."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scaling-model", default="tiny", choices=["tiny", FULL],
                        help=f"model for the 1/10/60-minute runs (default tiny; {FULL} takes hours at 60 min)")
    parser.add_argument("--minutes", type=float, nargs="+", default=[1, 10, 60])
    parser.add_argument("--full-minutes", type=float, nargs="*", default=[1],
                        help=f"lengths to run with the full-size {FULL} model (default 1; none to skip)")
    parser.add_argument("--startup-seconds", type=float, default=1.0,
                        help="length of the start-up test file (default 1); 0 to skip")
    parser.add_argument("--repeats", type=int, default=3, help="start-up measurements, best taken (default 3)")
    parser.add_argument("--chunking", choices=["seamless", "legacy"], default="seamless",
                        help="encode --chunking for the memory runs (default seamless, the CLI's default)")
    parser.add_argument("--work", type=Path, help="scratch folder (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "memory_startup.md")
    args = parser.parse_args()
    global CHUNKING
    CHUNKING = args.chunking

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jaxdac-bench-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        memory: list[tuple] = []
        print(f"memory, model {args.scaling_model}:", flush=True)
        weights = save_weights(args.scaling_model, work)
        for minutes in args.minutes:
            memory += memory_rows(args.scaling_model, weights, minutes, work)
        startup = []
        if args.full_minutes or args.startup_seconds:
            full = save_weights(FULL, work)
            if args.full_minutes and args.scaling_model != FULL:
                print(f"memory, model {FULL}:", flush=True)
                for minutes in args.full_minutes:
                    memory += memory_rows(FULL, full, minutes, work)
            if args.startup_seconds:
                print(f"start-up, model {FULL}:", flush=True)
                startup = startup_rows(full, args.startup_seconds, args.repeats, work)
    text = report(args, memory, startup, args.startup_seconds)
    text += f"\nTotal benchmark time {(time.perf_counter() - start) / 60:.1f} min.\n"
    print("\n" + text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
