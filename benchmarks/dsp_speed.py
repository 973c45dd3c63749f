"""Speed of jaxdac.dsp against the original's DSP on 10 minutes of stereo 44.1 kHz audio.

    .venv/bin/python benchmarks/dsp_speed.py [--minutes 10] [--repeats 3] [--rounds 2] [--out PATH]

jaxdac runs in this interpreter; the original (audiotools 0.7.2's ``AudioSignal.loudness``, pyloudnorm,
``julius.resample_frac``) runs in the reference interpreter (``.venv-reference``, or
``$JAXDAC_REFERENCE_PYTHON``), which executes this same file with ``--reference-side``. Both read the same
samples from a temporary .npy file. Times are the best of ``--repeats`` runs after one warm-up run, over
``--rounds`` rounds in which the two sides alternate; for jaxdac the warm-up is the call that compiles,
reported separately. Each row also shows how far apart the two outputs are (LU for loudness; max absolute
difference, on every 997th output sample, for resampling).

A second table is the design check behind ``jaxdac/dsp/loudness.py``: five ways to run the K-weighting
filter in JAX on one minute of the same audio, with their loudness error against the kept (exact) one.

The tables are printed as markdown and written to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE_RATE = 44100
RESAMPLE_TARGETS = [16000, 24000, 48000]
SUBSAMPLE = 997  # compare resampled outputs on every 997th sample (whole outputs are hundreds of MB)


def make_audio(minutes: float) -> np.ndarray:
    """``[1, 2, minutes * 60 * 44100]`` float32: 10 s of music | speech (tests/signals.py), repeated."""
    sys.path.insert(0, str(REPO / "tests"))
    import signals

    piece = signals.stereo(SAMPLE_RATE, 10.0, seed=0)  # [2, 441000]
    n = int(minutes * 60 * SAMPLE_RATE)
    return np.tile(piece, (1, -(-n // piece.shape[1])))[None, :, :n]


def best_of(fn, repeats: int) -> tuple[float, float, object]:
    """``(first call seconds, best of the next `repeats` calls, result)``."""
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return first, min(times), result


# ----------------------------------------------------------------------------------------------------
# Original side: runs under the reference interpreter.


def reference_side(audio_path: str, out_path: str, repeats: int) -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import julius
    import pyloudnorm
    import torch
    from audiotools import AudioSignal

    torch.set_num_threads(os.cpu_count() or 1)
    audio = np.load(audio_path)
    results, arrays = {}, {}

    def audiotools_loudness():
        return float(AudioSignal(torch.from_numpy(audio), SAMPLE_RATE).loudness()[0])

    meter = pyloudnorm.Meter(SAMPLE_RATE)
    samples = audio[0].T.astype(np.float64)
    _, results["loudness_audiotools"], arrays["loudness_audiotools"] = best_of(audiotools_loudness, repeats)
    _, results["loudness_pyloudnorm"], arrays["loudness_pyloudnorm"] = best_of(
        lambda: meter.integrated_loudness(samples), repeats
    )
    tensor = torch.from_numpy(audio)
    for target in RESAMPLE_TARGETS:
        with torch.inference_mode():
            _, seconds, y = best_of(lambda: julius.resample_frac(tensor, SAMPLE_RATE, target), repeats)
        results[f"resample_{target}"] = seconds
        arrays[f"resample_{target}"] = y.numpy()[..., ::SUBSAMPLE]
        arrays[f"resample_{target}_length"] = y.shape[-1]
    from importlib.metadata import version

    versions = {name: version(name) for name in ("torch", "julius", "descript-audiotools", "pyloudnorm")}
    np.savez(out_path, times=json.dumps(results), versions=json.dumps(versions), **arrays)


def run_reference(audio_path: str, repeats: int) -> dict:
    python = os.environ.get("JAXDAC_REFERENCE_PYTHON") or str(REPO / ".venv-reference" / "bin" / "python")
    if not Path(python).exists():
        sys.exit(f"no reference interpreter at {python}: bash scripts/install_reference.sh .venv-reference")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "reference.npz"
        subprocess.run(
            [python, __file__, "--reference-side", audio_path, str(out), "--repeats", str(repeats)], check=True
        )
        with np.load(out) as data:
            return {k: data[k] for k in data.files}


# ----------------------------------------------------------------------------------------------------
# jaxdac side.


def fir_k_weight(audio, sample_rate: int, taps: int):
    """K-weighting as an FIR: the filter's first ``taps`` impulse-response samples, FFT-convolved."""
    import jax.numpy as jnp
    import scipy.signal

    from jaxdac.dsp.loudness import k_weighting_biquads

    impulse = np.zeros(taps)
    impulse[0] = 1.0
    for b, a in k_weighting_biquads(sample_rate):
        impulse = scipy.signal.lfilter(b, a, impulse)
    n = audio.shape[-1] + taps
    n_fft = 1 << (n - 1).bit_length()
    spectrum = jnp.fft.rfft(audio, n_fft) * jnp.fft.rfft(jnp.asarray(impulse, jnp.float32), n_fft)
    return jnp.fft.irfft(spectrum, n_fft)[..., : audio.shape[-1]]


def lfilter_k_weight(audio, sample_rate: int):
    """K-weighting as a per-sample ``lax.scan`` of both biquads in transposed direct form II (= ``lfilter``)."""
    import jax
    import jax.numpy as jnp

    from jaxdac.dsp.loudness import k_weighting_biquads

    def biquad(x, b, a):  # x [N, T]
        b, a = b.astype(np.float32), a.astype(np.float32)

        def step(state, xn):
            yn = b[0] * xn + state[0]
            return (b[1] * xn - a[1] * yn + state[1], b[2] * xn - a[2] * yn), yn

        zeros = jnp.zeros(x.shape[:-1], x.dtype)
        return jax.lax.scan(step, (zeros, zeros), jnp.moveaxis(x, -1, 0))[1]

    y = audio.reshape(-1, audio.shape[-1])
    for b, a in k_weighting_biquads(sample_rate):
        y = jnp.moveaxis(biquad(y, b, a), 0, -1)
    return y.reshape(audio.shape)


def scan_k_weight(audio, sample_rate: int):
    """K-weighting as a per-sample ``lax.associative_scan`` of the filter's state recurrence, diagonalized
    (its cheapest form: each element is 4 complex gains and 4 complex states, not 4x4 matrices)."""
    import jax
    import jax.numpy as jnp

    from jaxdac.dsp.loudness import _balanced_cascade

    big_a, big_b, big_c, d = _balanced_cascade(sample_rate)
    poles, vectors = np.linalg.eig(big_a)
    modal_b, modal_c = np.linalg.solve(vectors, big_b), big_c @ vectors
    pushed = audio[..., None].astype(jnp.complex64) * modal_b.astype(np.complex64)  # [..., T, S]
    gains = jnp.broadcast_to(jnp.asarray(poles.astype(np.complex64)), pushed.shape)
    _, after = jax.lax.associative_scan(
        lambda p, q: (p[0] * q[0], q[0] * p[1] + q[1]), (gains, pushed), axis=audio.ndim - 1
    )
    before = jnp.concatenate([jnp.zeros_like(after[..., :1, :]), after[..., :-1, :]], axis=-2)
    return (before @ modal_c.astype(np.complex64)).real + np.float32(d) * audio


def filter_design_table(audio: np.ndarray, repeats: int) -> list[str]:
    import functools

    import jax
    import jax.numpy as jnp

    from jaxdac.dsp.loudness import gated_loudness, k_weight

    minute = jnp.asarray(audio[..., : 60 * SAMPLE_RATE])
    at_rate = functools.partial
    variants = {
        "chunked exact IIR (kept: Toeplitz chunks, group scan of the state)": at_rate(k_weight, sample_rate=SAMPLE_RATE),
        "per-sample lax.scan of the biquads (exact IIR, = lfilter)": at_rate(lfilter_k_weight, sample_rate=SAMPLE_RATE),
        "per-sample associative_scan (exact IIR)": at_rate(scan_k_weight, sample_rate=SAMPLE_RATE),
        "FIR 512 taps (audiotools' GPU path), FFT convolution": at_rate(fir_k_weight, sample_rate=SAMPLE_RATE, taps=512),
        "FIR 2048 taps, FFT convolution": at_rate(fir_k_weight, sample_rate=SAMPLE_RATE, taps=2048),
    }
    variants = {name: jax.jit(fn) for name, fn in variants.items()}
    exact = float(gated_loudness(k_weight(minute, SAMPLE_RATE), SAMPLE_RATE)[0])
    rows = [
        "| K-weighting in JAX (1 min stereo 44.1 kHz) | time (s) | first call incl. compile (s) | loudness error (LU) |",
        "|---|---:|---:|---:|",
    ]
    for name, fn in variants.items():
        first, best, y = best_of(lambda: jax.block_until_ready(fn(minute)), repeats)
        error = abs(float(gated_loudness(y, SAMPLE_RATE)[0]) - exact)
        rows.append(f"| {name} | {best:.3f} | {first:.2f} | {error:.1e} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "dsp_speed.md")
    parser.add_argument("--reference-side", nargs=2, metavar=("AUDIO_NPY", "OUT_NPZ"))
    args = parser.parse_args()
    if args.reference_side:
        reference_side(*args.reference_side, args.repeats)
        return

    sys.path.insert(0, str(REPO / "src"))
    import jax
    import jax.numpy as jnp

    from jaxdac.dsp import loudness, resample

    load_before = os.getloadavg()[0]
    audio = make_audio(args.minutes)
    x = jnp.asarray(audio)
    jobs = {"loudness": lambda: float(loudness(x, SAMPLE_RATE)[0])}
    for target in RESAMPLE_TARGETS:
        jobs[f"resample_{target}"] = lambda target=target: jax.block_until_ready(resample(x, SAMPLE_RATE, target))

    # Other processes may share the machine: alternate the two sides for --rounds rounds and keep each
    # side's best, so that a busy spell does not land on one side only.
    ref_times: dict[str, float] = {}
    ours: dict[str, list] = {}  # name -> [first call, best, result]
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "audio.npy")
        np.save(path, audio)
        for round_ in range(args.rounds):
            print(f"round {round_ + 1}/{args.rounds}: original side (reference interpreter) ...", flush=True)
            ref = run_reference(path, args.repeats)
            for name, seconds in json.loads(str(ref["times"])).items():
                ref_times[name] = min(seconds, ref_times.get(name, math.inf))
            print(f"round {round_ + 1}/{args.rounds}: jaxdac side ...", flush=True)
            for name, job in jobs.items():
                first, best, result = best_of(job, args.repeats)
                if name not in ours:
                    ours[name] = [first, best, result]
                ours[name][1] = min(ours[name][1], best)
    ref_versions = json.loads(str(ref["versions"]))

    rows = [
        f"| operation ({args.minutes:g} min, stereo, 44.1 kHz) | original | original (s) | jaxdac (s) "
        "| jaxdac first call incl. compile (s) | speed-up | difference |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    originals = {
        "loudness_audiotools": "audiotools `AudioSignal.loudness`",
        "loudness_pyloudnorm": "pyloudnorm `Meter.integrated_loudness`",
    }
    first, best, value = ours["loudness"]
    for name, label in originals.items():
        seconds = ref_times[name]
        rows.append(
            f"| loudness | {label} | {seconds:.2f} | {best:.2f} | {first:.2f} | {seconds / best:.1f}x "
            f"| {abs(value - float(ref[name])):.1e} LU |"
        )
    for target in RESAMPLE_TARGETS:
        first, best, y = ours[f"resample_{target}"]
        assert y.shape[-1] == int(ref[f"resample_{target}_length"]), "output length differs from julius"
        diff = float(np.abs(np.asarray(y)[..., ::SUBSAMPLE] - ref[f"resample_{target}"]).max())
        seconds = ref_times[f"resample_{target}"]
        rows.append(
            f"| resample 44100 -> {target} | `julius.resample_frac` | {seconds:.2f} | {best:.2f} | {first:.2f} "
            f"| {seconds / best:.1f}x | {diff:.1e} |"
        )
    design = filter_design_table(audio, args.repeats)

    header = [
        "# jaxdac.dsp speed against the original",
        "",
        f"`{' '.join(['.venv/bin/python', 'benchmarks/dsp_speed.py', *sys.argv[1:]])}` "
        f"on {os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}); "
        f"jax {jax.__version__} ({jax.default_backend()}), original: torch {ref_versions['torch']}, "
        f"audiotools {ref_versions['descript-audiotools']}, julius {ref_versions['julius']}, "
        f"pyloudnorm {ref_versions['pyloudnorm']}. Best of {args.rounds} rounds of {args.repeats} runs after a "
        "warm-up, the two sides alternating; "
        "speed-up = original / jaxdac (steady state). The original's loudness filter runs through scipy's "
        "`lfilter` (the reference environment's torchaudio patch, see scripts/install_reference.sh). "
        f"1-minute load average {load_before:.1f} before the run and {os.getloadavg()[0]:.1f} after "
        "(above the core count, other processes were competing for the cores).",
        "",
    ]
    text = "\n".join(header + rows + ["", *design, ""])
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
