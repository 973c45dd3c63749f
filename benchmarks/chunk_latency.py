"""Per-chunk compress / decompress latency of jaxdac against the original: the table of the paper's section 3.

    PYTHONPATH=src .venv/bin/python benchmarks/chunk_latency.py [--windows 0.37 0.38 ... 20]
        [--runs N] [--rounds 2] [--threads 2] [--bf16] [--out-dir benchmarks/results]

Both sides run the full-size 44.1 kHz model (``dac_44khz``) with the same seeded weights
(``tests/model_cases.py::seeded_state_dict``: jaxdac through ``convert.from_state_dict``, the original
through ``scripts/reference_model.py::build_original``) on the same input (tests/signals.py speech and
music, mixed), in the original's legacy unpadded chunk mode. For each window:

* the window is rounded up to a multiple of the hop length, and the chunk hop is the model's unpadded
  output length for that window (``geometry.chunk_plan``, the original's ``compress``);
* compress = one ``[1, 1, window]`` window through encoder + quantizer. jaxdac: the compiled chunk
  function ``compress`` uses (``inference._encode_chunks``, unpadded), ``.block_until_ready()``; the
  original: ``model.encode(x)`` with ``model.padding = False`` under ``torch.no_grad()``;
* decompress = one chunk of codes ``[1, 9, chunk_length]`` through ``from_codes`` + decoder
  (``inference._decode_chunks`` / ``model.decode(model.quantizer.from_codes(c)[0])``). Both decode the
  original's codes for the window (which must equal jaxdac's: the table says whether they do).

The original runs in a worker under the reference interpreter (``benchmarks/reference_chunk_latency.py``,
``.venv-reference`` or ``$JAXDAC_REFERENCE_PYTHON``) with ``torch.set_num_threads(--threads)``; jaxdac runs
here, with XLA's CPU thread pool (this machine: 2 cores). The two sides alternate in ``--rounds`` blocks
per window so that load from other processes falls on both; the 1-minute load average is recorded per
window. The first call of each shape is timed separately (jaxdac: tracing + XLA compilation).

Writes ``chunk_latency.md``, ``chunk_latency.csv`` and ``chunk_latency.png`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "src")]

CASE = "dac_44khz"
WINDOWS = [0.37, 0.38, 0.42, 0.46, 0.5, 1.0, 5.0, 10.0, 20.0]
# Timed runs per side per window when --runs is not given: 20 up to 5 s; a full run of the table then
# takes about 25 minutes on 2 cores (the original needs ~17 s and ~30 s per 20 s window).
DEFAULT_RUNS = {5.0: 20, 10.0: 6, 20.0: 3}


def default_runs(window: float) -> int:
    for limit, runs in sorted(DEFAULT_RUNS.items()):
        if window <= limit:
            return runs
    return 2


def make_audio(sample_rate: int, samples: int) -> np.ndarray:
    """``[1, 1, samples]`` float32: speech-like and music-like test signals mixed (tests/signals.py)."""
    import signals

    seconds = samples / sample_rate
    mix = 0.6 * signals.speech_like(sample_rate, seconds, 7) + 0.4 * signals.music_like(sample_rate, seconds, 8)
    out = np.zeros((1, 1, samples), np.float32)
    out[0, 0, : min(samples, mix.shape[-1])] = mix[:samples]
    return out


class Reference:
    """The original, in a worker process under the reference interpreter (one JSON line per command)."""

    def __init__(self, threads: int):
        python = os.environ.get("JAXDAC_REFERENCE_PYTHON") or str(REPO / ".venv-reference" / "bin" / "python")
        if not Path(python).exists():
            sys.exit(f"no reference interpreter at {python}: bash scripts/install_reference.sh .venv-reference")
        script = REPO / "benchmarks" / "reference_chunk_latency.py"
        self.proc = subprocess.Popen(
            [python, str(script), "--case", CASE, "--threads", str(threads)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the reference worker exited (see its stderr above)")
        return json.loads(line)

    def __call__(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        return self._read()

    def close(self) -> None:
        self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
        self.proc.stdin.flush()
        self.proc.wait(timeout=60)


class Jaxdac:
    """jaxdac's chunk functions, exactly as ``compress`` / ``decompress`` call them in legacy mode."""

    def __init__(self, dtype: str = "float32"):
        import jax.numpy as jnp
        from flax import nnx

        from jaxdac import inference
        from model_parity import seeded_model

        self.jnp = jnp
        self.inference = inference
        self.model = seeded_model(CASE)
        self.dtype = dtype
        self.graphdef, self.state = nnx.split(self.model)
        # The chunk functions take a dtype since the reduced-precision mode (and prepare, once, folded
        # parameters for it: see inference._chunk_state); the first version took neither.
        self.has_dtype = hasattr(inference, "_chunk_state")
        if not self.has_dtype and dtype != "float32":
            raise SystemExit("this version of jaxdac has no reduced-precision chunk functions")
        self.extra = (dtype,) if self.has_dtype else ()

    def encode(self, x):
        return self.inference._encode_chunks(self.graphdef, self.state, x, None, False, *self.extra).block_until_ready()

    def decode(self, codes):
        return self.inference._decode_chunks(self.graphdef, self.state, codes, False, *self.extra).block_until_ready()


def time_calls(fn, arg, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - start)
    return times


def stats(times: list[float]) -> tuple[float, float]:
    ms = [t * 1e3 for t in times]
    return statistics.fmean(ms), (statistics.stdev(ms) if len(ms) > 1 else 0.0)


def mel_distance(a: np.ndarray, b: np.ndarray, sample_rate: int) -> float:
    """Mean absolute difference of log10 mel magnitudes (80 mels, 2048-point window), a in [1, T]."""
    import jax.numpy as jnp

    from jaxdac.dsp import mel_spectrogram

    ma = mel_spectrogram(jnp.asarray(a)[None], sample_rate, 2048, 512)
    mb = mel_spectrogram(jnp.asarray(b)[None], sample_rate, 2048, 512)
    la, lb = jnp.log10(jnp.maximum(ma, 1e-5)), jnp.log10(jnp.maximum(mb, 1e-5))
    return float(jnp.mean(jnp.abs(la - lb)))


def run(args) -> tuple[list[dict], dict, Jaxdac]:
    import jax
    import jax.numpy as jnp

    from jaxdac import geometry

    tmp = Path(tempfile.mkdtemp(prefix="chunk_latency_"))
    sides = {"float32": Jaxdac("float32")}
    if args.bf16:
        sides["bfloat16"] = Jaxdac("bfloat16")
    ours = sides["float32"]
    config = ours.model.config
    ref = Reference(args.threads)
    print(f"reference: {ref.info}", file=sys.stderr)
    rows = []
    try:
        for win in args.windows:
            window, hop = geometry.chunk_plan(config, 10 * config.sample_rate * 60, win)
            runs = args.runs or default_runs(win)
            x_np = make_audio(config.sample_rate, window)
            audio_path, codes_path = tmp / "x.npy", tmp / "codes.npy"
            np.save(audio_path, x_np)
            x = jnp.asarray(x_np)
            row = {"window_s": win, "window_samples": window, "hop_samples": hop,
                   "hop_ms": 1e3 * hop / config.sample_rate, "runs": runs}

            # First calls: jaxdac compiles; the original warms its allocator.
            compile_enc = time_calls(ours.encode, x, 1)[0]
            our_codes = np.asarray(ours.encode(x))
            r = ref(op="encode", audio=str(audio_path), runs=1, codes_out=str(codes_path))
            ref_codes = np.load(codes_path)
            codes = jnp.asarray(ref_codes)
            compile_dec = time_calls(ours.decode, codes, 1)[0]
            rd = ref(op="decode", codes=str(codes_path), runs=1)
            row.update(jax_compile_compress_s=compile_enc, jax_compile_decompress_s=compile_dec,
                       ref_first_compress_s=r["first_s"], ref_first_decompress_s=rd["first_s"],
                       chunk_frames=int(ref_codes.shape[-1]),
                       codes_equal=bool(our_codes.shape == ref_codes.shape and (our_codes == ref_codes).all()))

            times = {k: [] for k in ("jax_c", "jax_d", "ref_c", "ref_d")}
            loads = [os.getloadavg()[0]]
            blocks = [runs // args.rounds + (i < runs % args.rounds) for i in range(args.rounds)]
            for i, n in enumerate(b for b in blocks if b):
                order = ("jax", "ref") if i % 2 == 0 else ("ref", "jax")
                for side in order:
                    if side == "jax":
                        times["jax_c"] += time_calls(ours.encode, x, n)
                        times["jax_d"] += time_calls(ours.decode, codes, n)
                    else:
                        times["ref_c"] += ref(op="encode", audio=str(audio_path), runs=n)["times"]
                        times["ref_d"] += ref(op="decode", codes=str(codes_path), runs=n)["times"]
                    loads.append(os.getloadavg()[0])
            for key, label in (("ref_c", "ref_compress"), ("jax_c", "jax_compress"),
                               ("ref_d", "ref_decompress"), ("jax_d", "jax_decompress")):
                row[f"{label}_ms"], row[f"{label}_sd_ms"] = stats(times[key])
            row["ratio_compress"] = row["jax_compress_ms"] / row["ref_compress_ms"]
            row["ratio_decompress"] = row["jax_decompress_ms"] / row["ref_decompress_ms"]
            for side in ("ref", "jax"):
                for op in ("compress", "decompress"):
                    row[f"rtf_{side}_{op}"] = row["hop_ms"] / row[f"{side}_{op}_ms"]
            row["load_mean"] = statistics.fmean(loads)
            row["load_max"] = max(loads)

            if "bfloat16" in sides:
                low = sides["bfloat16"]
                row["bf16_compile_compress_s"] = time_calls(low.encode, x, 1)[0]
                row["bf16_compile_decompress_s"] = time_calls(low.decode, codes, 1)[0]
                n = min(runs, args.bf16_runs)
                row["bf16_runs"] = n
                row["bf16_compress_ms"], row["bf16_compress_sd_ms"] = stats(time_calls(low.encode, x, n))
                row["bf16_decompress_ms"], row["bf16_decompress_sd_ms"] = stats(time_calls(low.decode, codes, n))
                low_codes = np.asarray(low.encode(x))
                row["bf16_code_agreement"] = float((low_codes == our_codes).mean())
                row["bf16_code_agreement_q1"] = float((low_codes[:, 0] == our_codes[:, 0]).mean())
                y32, y16 = np.asarray(ours.decode(codes)), np.asarray(low.decode(codes), np.float32)
                row["bf16_mel_distance"] = mel_distance(y16, y32, config.sample_rate)
                row["bf16_max_abs_error"] = float(np.abs(y16 - y32).max())

            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    finally:
        ref.close()
    meta = {"reference": ref.info, "jax": jax.__version__, "platform": platform.platform(),
            "cpus": os.cpu_count(), "threads": args.threads, "rounds": args.rounds}
    return rows, meta, ours


def throughput(ours: Jaxdac, rows: list[dict], repeats: int = 5) -> str:
    """Machine's achievable float32 GFLOP/s (a large matmul; a representative decoder convolution) and
    the fraction of it the chunk functions reach (FLOPs from XLA's cost analysis of the compiled chunk
    functions, time from the table)."""
    import jax
    import jax.numpy as jnp

    from jaxdac import geometry

    def best(fn, *args):
        fn(*args).block_until_ready()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn(*args).block_until_ready()
            times.append(time.perf_counter() - start)
        return min(times)

    key = jax.random.key(0)
    a = jax.random.normal(key, (4096, 2048))
    b = jax.random.normal(key, (2048, 2048))
    dot_gflops = 2 * 4096 * 2048 * 2048 / best(jax.jit(jnp.dot), a, b) / 1e9
    # Decoder block 2's dilated residual conv: 384 channels, kernel 7, dilation 3, ~11k samples.
    x = jax.random.normal(key, (1, 11264, 384))
    w = jax.random.normal(key, (7, 384, 384))
    conv = jax.jit(lambda x, w: jax.lax.conv_general_dilated(x, w, (1,), "VALID", rhs_dilation=(3,),
                                                             dimension_numbers=("NWC", "WIO", "NWC")))
    out_len = 11264 - 18
    conv_gflops = 2 * out_len * 384 * 384 * 7 / best(conv, x, w) / 1e9
    lines = [
        "",
        "## Fraction of the machine's convolution throughput",
        "",
        f"Micro-benchmarks on this CPU (best of {repeats}, float32, XLA's thread pool): a 4096x2048 @ 2048x2048 "
        f"matmul runs at **{dot_gflops:.1f} GFLOP/s**; a 384-channel kernel-7 dilation-3 convolution over 11,264 "
        f"samples (decoder block 2's residual conv) at **{conv_gflops:.1f} GFLOP/s**. Model FLOPs per chunk are "
        "XLA's cost analysis of the compiled chunk functions (`.lower(...).compile().cost_analysis()['flops']`).",
        "",
        "| window (ms) | compress GFLOP | compress GFLOP/s | % of conv peak | decompress GFLOP | decompress GFLOP/s "
        "| % of conv peak |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    from jaxdac import inference

    for r in rows:
        window, _ = geometry.chunk_plan(ours.model.config, 10**8, r["window_s"])
        state = inference._chunk_state(ours.graphdef, ours.state)
        x = jax.ShapeDtypeStruct((1, 1, window), jnp.float32)
        codes = jax.ShapeDtypeStruct((1, ours.model.n_codebooks, r["chunk_frames"]), jnp.int32)
        enc = inference._encode_chunks_prepared.lower(ours.graphdef, state, x, None, False, "float32")
        dec = inference._decode_chunks_prepared.lower(ours.graphdef, state, codes, False, "float32")
        flops = []
        for lowered in (enc, dec):
            cost = lowered.compile().cost_analysis()
            cost = cost[0] if isinstance(cost, list) else cost
            flops.append(float(cost["flops"]))
        cells = []
        for f, op in zip(flops, ("compress", "decompress")):
            rate = f / (r[f"jax_{op}_ms"] / 1e3) / 1e9
            r[f"gflop_{op}"], r[f"gflops_{op}"] = f / 1e9, rate
            cells.append(f"{f / 1e9:.1f} | {rate:.1f} | {100 * rate / conv_gflops:.0f}%")
        lines.append(f"| {r['window_s'] * 1e3:.0f} | " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"(matmul peak {dot_gflops:.1f} GFLOP/s; conv peak {conv_gflops:.1f} GFLOP/s)")
    return "\n".join(lines) + "\n"


def fmt(mean: float, sd: float) -> str:
    return f"{mean:.1f} ({sd:.1f})"


def markdown(rows: list[dict], meta: dict) -> str:
    lines = [
        "# Per-chunk latency: jaxdac vs the original (44.1 kHz model, CPU)",
        "",
        f"jax {meta['jax']}, original: dac {meta['reference']['dac']} on torch {meta['reference']['torch']} "
        f"({meta['reference']['threads']} threads); {meta['platform']}, {meta['cpus']} CPUs. "
        "Times in ms, mean (standard deviation) over `runs` timed calls per side after one warm-up call, "
        f"sides alternating in {meta['rounds']} blocks. Ratio = jaxdac / original (< 1: jaxdac faster). "
        "RTF = hop ms / chunk ms (> 1: faster than real time). Load = 1-minute load average during the row "
        "(mean / max; the machine has 2 cores shared with other processes).",
        "",
        "| window (ms) | hop (samples) | hop (ms) | runs | compress original | compress jaxdac | ratio | "
        "decompress original | decompress jaxdac | ratio | RTF compress orig / jax | RTF decompress orig / jax "
        "| codes equal | load |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:-:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['window_s'] * 1e3:.0f} | {r['hop_samples']} | {r['hop_ms']:.1f} | {r['runs']} "
            f"| {fmt(r['ref_compress_ms'], r['ref_compress_sd_ms'])} | {fmt(r['jax_compress_ms'], r['jax_compress_sd_ms'])} "
            f"| **{r['ratio_compress']:.2f}** "
            f"| {fmt(r['ref_decompress_ms'], r['ref_decompress_sd_ms'])} | {fmt(r['jax_decompress_ms'], r['jax_decompress_sd_ms'])} "
            f"| **{r['ratio_decompress']:.2f}** "
            f"| {r['rtf_ref_compress']:.2f} / {r['rtf_jax_compress']:.2f} | {r['rtf_ref_decompress']:.2f} / {r['rtf_jax_decompress']:.2f} "
            f"| {'yes' if r['codes_equal'] else 'NO'} | {r['load_mean']:.1f} / {r['load_max']:.1f} |"
        )
    merged = [f"{r['window_s'] * 1e3:.0f}" for r in rows if r.get("source")]
    if merged:
        lines += ["", f"Rows {', '.join(merged)} ms come from an earlier run of this script (`--rows-from`), "
                      "under the load shown in their row."]
    lines += [
        "",
        "First call of each shape (s): jaxdac's includes tracing and XLA compilation; the original's is its warm-up.",
        "",
        "| window (ms) | jaxdac compress | jaxdac decompress | original compress | original decompress |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['window_s'] * 1e3:.0f} | {r['jax_compile_compress_s']:.2f} | {r['jax_compile_decompress_s']:.2f} "
            f"| {r['ref_first_compress_s']:.2f} | {r['ref_first_decompress_s']:.2f} |"
        )
    if any("bf16_compress_ms" in r for r in rows):
        lines += [
            "",
            "## Reduced precision (`dtype=bfloat16`: parameters and activations in bfloat16, codebook search in float32)",
            "",
            "Speed-up = float32 time / bfloat16 time (< 1: slower). Code agreement: fraction of the window's codes "
            "equal to float32 jaxdac's (all 9 codebooks / the first). Mel distance: mean |log10 mel| difference "
            "(80 mels, 2048-point STFT) between bfloat16 and float32 decoding of the same codes; max abs: largest "
            "sample difference.",
            "",
            "| window (ms) | runs | compress bf16 | speed-up | decompress bf16 | speed-up | code agreement (all / first) "
            "| mel distance | max abs |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            if "bf16_compress_ms" not in r:
                lines.append(f"| {r['window_s'] * 1e3:.0f} | not run | | | | | | | |")
                continue
            lines.append(
                f"| {r['window_s'] * 1e3:.0f} | {r['bf16_runs']} | {fmt(r['bf16_compress_ms'], r['bf16_compress_sd_ms'])} "
                f"| {r['jax_compress_ms'] / r['bf16_compress_ms']:.2f} "
                f"| {fmt(r['bf16_decompress_ms'], r['bf16_decompress_sd_ms'])} "
                f"| {r['jax_decompress_ms'] / r['bf16_decompress_ms']:.2f} "
                f"| {r['bf16_code_agreement']:.3f} / {r['bf16_code_agreement_q1']:.3f} "
                f"| {r['bf16_mel_distance']:.4f} | {r['bf16_max_abs_error']:.3g} |"
            )
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    hop = [r["hop_ms"] for r in rows]
    for ax, op in zip(axes[:2], ("compress", "decompress")):
        for side, label in (("ref", "original (PyTorch)"), ("jax", "jaxdac (JAX)")):
            ax.errorbar(hop, [r[f"{side}_{op}_ms"] for r in rows], yerr=[r[f"{side}_{op}_sd_ms"] for r in rows],
                        marker="o", capsize=3, label=label)
        low = [r for r in rows if "bf16_compress_ms" in r]
        if low:
            ax.errorbar([r["hop_ms"] for r in low], [r[f"bf16_{op}_ms"] for r in low], yerr=[r[f"bf16_{op}_sd_ms"] for r in low],
                        marker="x", capsize=3, linestyle="--", label="jaxdac bfloat16")
        ax.set(xscale="log", yscale="log", xlabel="chunk hop (ms)", ylabel="time per chunk (ms)", title=op)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax = axes[2]
    for op in ("compress", "decompress"):
        ax.plot(hop, [r[f"ratio_{op}"] for r in rows], marker="o", label=op)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.axhline(0.85, color="r", lw=0.8, ls=":", label="target 0.85")
    ax.set(xscale="log", xlabel="chunk hop (ms)", ylabel="jaxdac / original", title="time ratio")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.suptitle("DAC 44.1 kHz per-chunk latency on CPU (2 cores)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--windows", type=float, nargs="+", default=WINDOWS, help="window sizes in seconds")
    parser.add_argument("--runs", type=int, default=None, help=f"timed runs per side and window (default {DEFAULT_RUNS})")
    parser.add_argument("--rounds", type=int, default=2, help="alternating blocks per window")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the original")
    parser.add_argument("--bf16", action="store_true", help="also time jaxdac in bfloat16 and measure its quality")
    parser.add_argument("--bf16-runs", type=int, default=5, help="timed bfloat16 runs per window (at most --runs)")
    parser.add_argument("--throughput", action="store_true",
                        help="also measure the machine's matmul/conv GFLOP/s and the model's fraction of it")
    parser.add_argument("--rows-from", type=Path, default=None,
                        help="merge in the rows (JSON lines) an earlier run printed to stderr, for windows not run now")
    parser.add_argument("--out-dir", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default="chunk_latency", help="file name stem of the outputs")
    args = parser.parse_args()
    start = time.perf_counter()
    rows, meta, ours = run(args)
    if args.rows_from:
        # Rows of an earlier (e.g. interrupted) run, from the JSON lines it printed to stderr.
        done = {r["window_s"] for r in rows}
        earlier = [json.loads(line) for line in args.rows_from.read_text().splitlines() if line.startswith('{"window_s"')]
        earlier = [dict(r, source="earlier run") for r in earlier if r["window_s"] not in done]
        rows = sorted(earlier + rows, key=lambda r: r["window_s"])
    args.out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(rows, meta)
    if args.throughput:
        text += throughput(ours, rows)
    text += f"\nTotal benchmark wall time: {(time.perf_counter() - start) / 60:.1f} min.\n"
    (args.out_dir / f"{args.name}.md").write_text(text)
    with open(args.out_dir / f"{args.name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    plot(rows, args.out_dir / f"{args.name}.png")
    print(text)


if __name__ == "__main__":
    main()
