"""Tables of ``benchmarks/gpu/bench.py``, rendered from its ``results.jsonl`` (any part of it: a run cut short
renders what it measured).

    python3 benchmarks/gpu/report.py OUT_DIR        # writes report.md, *.csv, chunk_latency.png there

Files: ``report.md`` (the machine, the settings, every table, what was skipped), ``chunk_latency.csv`` (one
row per window: float32 both sides, jaxdac bfloat16 and the original under torch.compile where measured),
``end_to_end.csv``, ``train_step.csv`` and, with matplotlib and ``png=True``, ``chunk_latency.png``.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path


def _fmt(mean, sd) -> str:
    return "-" if mean is None else f"{mean:.2f} ({sd:.2f})"


def _num(value, spec: str = ".2f") -> str:
    return "-" if value is None or value != value else format(value, spec)


def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)


def _by_kind(results: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in results:
        out.setdefault(r["kind"], []).append({k: v for k, v in r.items() if k != "kind"})
    return out


def chunk_rows(kinds: dict) -> list[dict]:
    """One row per window: the float32 row with the bfloat16 (``bf16_``) and torch.compile (``compiled_``)
    measurements of the same window merged in."""
    rows = {r["window_s"]: dict(r) for r in kinds.get("chunk", [])}
    for prefix, kind in (("bf16_", "chunk_bf16"), ("compiled_", "chunk_compile")):
        for r in kinds.get(kind, []):
            row = rows.setdefault(r["window_s"], {"window_s": r["window_s"]})
            row.update({prefix + k: v for k, v in r.items() if k != "window_s"})
    return [rows[w] for w in sorted(rows)]


def markdown(kinds: dict) -> str:
    jx = (kinds.get("machine_jax") or [{}])[-1]
    rf = (kinds.get("machine_ref") or [{}])[-1]
    settings = (kinds.get("settings") or [{}])[-1]
    gpu = (kinds.get("machine_gpu") or [{}])[-1]
    lines = [
        "# jaxdac vs the original DAC on the GPU (44.1 kHz model, seeded identical weights)",
        "",
        f"Rendered {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())} by `benchmarks/gpu/run.sh`.",
        "",
        "## Machine",
        "",
        f"* GPU: {gpu.get('nvidia_smi') or rf.get('gpu') or 'none seen'}",
        f"* CPU: {gpu.get('cpu', '?')}",
        f"* jaxdac: jax {jx.get('jax')} / jaxlib {jx.get('jaxlib')}, backend **{jx.get('backend')}** "
        f"({jx.get('device')}), flax {jx.get('flax')}, numpy {jx.get('numpy')}, Python {jx.get('python')}; "
        f"default matmul precision {jx.get('default_matmul_precision')}, "
        f"XLA_PYTHON_CLIENT_MEM_FRACTION {jx.get('mem_fraction')}, XLA_FLAGS `{jx.get('xla_flags') or ''}`",
        f"* original: dac {rf.get('dac')}, audiotools {rf.get('audiotools')} on torch {rf.get('torch')} "
        f"(CUDA {rf.get('cuda')}, cuDNN {rf.get('cudnn')}), device {rf.get('device')}; cudnn.benchmark "
        f"{rf.get('cudnn_benchmark')}, cudnn.allow_tf32 {rf.get('cudnn_allow_tf32')}, matmul.allow_tf32 "
        f"{rf.get('matmul_allow_tf32')}",
        f"* {jx.get('platform', '')}",
    ]
    if settings:
        lines.append(f"* settings: `bench.py {' '.join(settings.get('argv', []))}`")
    if jx and jx.get("backend") == "cpu" and rf.get("device", "").startswith("cuda"):
        lines.append("* **WARNING: JAX ran on the CPU while the original ran on the GPU: not a GPU comparison.**")

    rows = chunk_rows(kinds)
    f32 = [r for r in rows if "jax_compress_ms" in r]
    if f32:
        lines += [
            "",
            "## Per-chunk latency, float32 (the paper's table)",
            "",
            "One chunk of the original's legacy (unpadded) compress / decompress loop, batch 1. Times in ms, mean "
            "(standard deviation) over `runs` timed calls per side (after the first call and the warm-up calls), "
            "the sides alternating in blocks; every call ends synchronised (`block_until_ready` / "
            "`torch.cuda.synchronize`). Original: eager PyTorch under `torch.inference_mode()`. Ratio = jaxdac / "
            "original (< 1: jaxdac faster). Codes equal: % of the window's codes jaxdac's float32 shares with "
            "the original's.",
            "",
            "| window (ms) | hop (ms) | runs | compress original | compress jaxdac | ratio | decompress original "
            "| decompress jaxdac | ratio | codes equal % |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in f32:
            lines.append(
                f"| {r['window_s'] * 1e3:.0f} | {r['hop_ms']:.1f} | {r['runs']} "
                f"| {_fmt(r['ref_compress_ms'], r['ref_compress_sd_ms'])} "
                f"| {_fmt(r['jax_compress_ms'], r['jax_compress_sd_ms'])} | **{r['ratio_compress']:.2f}** "
                f"| {_fmt(r['ref_decompress_ms'], r['ref_decompress_sd_ms'])} "
                f"| {_fmt(r['jax_decompress_ms'], r['jax_decompress_sd_ms'])} | **{r['ratio_decompress']:.2f}** "
                f"| {r['codes_equal_pct']:.2f} |")
        lines += [
            "",
            "First call of each shape (s): jaxdac's first call traces and compiles (XLA, "
            "with its autotuning); the original's sets up cuDNN.",
            "",
            "| window (ms) | jaxdac compress | jaxdac decompress | original compress | original decompress |",
            "|---:|---:|---:|---:|---:|",
        ]
        for r in f32:
            lines.append(f"| {r['window_s'] * 1e3:.0f} | {_num(r['jax_first_compress_s'])} "
                         f"| {_num(r['jax_first_decompress_s'])} | {_num(r.get('ref_first_compress_s'))} "
                         f"| {_num(r.get('ref_first_decompress_s'))} |")

    low = [r for r in rows if "bf16_compress_ms" in r]
    if low:
        lines += [
            "",
            "## jaxdac in bfloat16 (`dtype=\"bfloat16\"`: encoder and decoder in bfloat16, codebook search float32)",
            "",
            "Speed-up = jaxdac float32 / bfloat16; ratio = bfloat16 / the original's float32 (< 1: faster). Code "
            "agreement: % of the window's codes equal to jaxdac float32's (all 9 codebooks / the first) and to "
            "the original's. Mel distance: mean |log10 mel| difference of bfloat16 and float32 decoding of the "
            "same codes; max abs: the largest sample difference.",
            "",
            "| window (ms) | runs | compress bf16 | speed-up | ratio | decompress bf16 | speed-up | ratio "
            "| agreement vs f32 (all / first) | vs original | mel distance | max abs |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in low:
            lines.append(
                f"| {r['window_s'] * 1e3:.0f} | {r['bf16_runs']} | {_fmt(r['bf16_compress_ms'], r['bf16_compress_sd_ms'])} "
                f"| {_num(r.get('jax_compress_ms', float('nan')) / r['bf16_compress_ms'])} "
                f"| {_num(r['bf16_compress_ms'] / r.get('ref_compress_ms', float('nan')))} "
                f"| {_fmt(r['bf16_decompress_ms'], r['bf16_decompress_sd_ms'])} "
                f"| {_num(r.get('jax_decompress_ms', float('nan')) / r['bf16_decompress_ms'])} "
                f"| {_num(r['bf16_decompress_ms'] / r.get('ref_decompress_ms', float('nan')))} "
                f"| {r['bf16_agreement_f32_pct']:.2f} / {r['bf16_agreement_f32_q1_pct']:.2f} "
                f"| {r['bf16_agreement_original_pct']:.2f} | {r['bf16_mel_distance']:.4f} | {r['bf16_max_abs_error']:.3g} |")

    comp = [r for r in rows if "compiled_compress_ms" in r]
    if comp:
        lines += [
            "",
            "## The original under `torch.compile` (`dynamic=False`, inference mode)",
            "",
            "Ratio = jaxdac float32 / the compiled original. First call = compilation (s).",
            "",
            "| window (ms) | runs | compress compiled | ratio | decompress compiled | ratio | first compress (s) "
            "| first decompress (s) |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in comp:
            lines.append(
                f"| {r['window_s'] * 1e3:.0f} | {min(r['compiled_compress_runs'], r['compiled_decompress_runs'])} "
                f"| {_fmt(r['compiled_compress_ms'], r['compiled_compress_sd_ms'])} "
                f"| {_num(r.get('jax_compress_ms', float('nan')) / r['compiled_compress_ms'])} "
                f"| {_fmt(r['compiled_decompress_ms'], r['compiled_decompress_sd_ms'])} "
                f"| {_num(r.get('jax_decompress_ms', float('nan')) / r['compiled_decompress_ms'])} "
                f"| {_num(r['compiled_first_compress_s'])} | {_num(r['compiled_first_decompress_s'])} |")

    e2e = kinds.get("e2e", [])
    if e2e:
        audio_s = e2e[0]["audio_s"]
        base = {(r["win"], r["op"]): r for r in e2e if r["pipeline"] == "original"}
        lines += [
            "",
            "## End-to-end through the public APIs",
            "",
            f"{audio_s / 60:g} min of 48 kHz stereo (resampled to 44.1 kHz by both). jaxdac: `jaxdac.compress(model, "
            "audio, 48000, win, chunking=...)` / `jaxdac.decompress(model, read_dac_file(path), win_duration=win)` "
            "(`_bN`: `chunk_batch=N`); the original: `model.compress(AudioSignal(cpu tensor, 48000), win)` / "
            "`model.decompress(path)` with the model on the GPU (as `python -m dac encode` runs it). First = the "
            "first call in the process (jaxdac: compiles its chunk functions); warm = median of the later calls. "
            "x real time = audio seconds / warm seconds; ratio = jaxdac warm / the original's warm.",
            "",
            "| window | pipeline | operation | first (s) | warm (s) | x real time | ratio |",
            "|---:|---|---|---:|---:|---:|---:|",
        ]
        for r in e2e:
            ref = base.get((r["win"], r["op"]))
            ratio = r["warm_s"] / ref["warm_s"] if ref and ref["warm_s"] == ref["warm_s"] else float("nan")
            lines.append(f"| {r['win']:g} s | {r['pipeline']} | {r['op']} | {r['first_s']:.2f} | {_num(r['warm_s'])} "
                         f"| {r['x_real_time']:.1f} | {_num(ratio)} |")
        for c in kinds.get("e2e_codes", []):
            lines.append(f"\nWindow {c['win']:g} s: jaxdac legacy and the original's codes (shapes {c['shapes']}) "
                         f"{c['equal_pct']:.3f}% equal.")

    tr = kinds.get("train", [])
    if tr:
        base = {r["batch"]: r for r in tr if r["side"] == "original" and r["status"] == "ok"}
        lines += [
            "",
            "## Training step",
            "",
            "Seconds per step over the timed steps after the first (mean, std); first = trace + compile + run for "
            "jaxdac, the first run for the original; each process alone on the GPU; ratio = s/step / the "
            "original's at the same batch. Peak = device memory (JAX `peak_bytes_in_use`, torch "
            "`max_memory_allocated`). On out-of-memory the batch is halved for both sides.",
            "",
            "| model | batch | side | dtype | status | s/step | std | steps | ratio | first step (s) | peak GiB "
            "| mel loss after |",
            "|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in tr:
            ok = r["status"] == "ok"
            b = base.get(r["batch"])
            ratio = r["step_s"] / b["step_s"] if ok and b else float("nan")
            lines.append(
                f"| {r['case']} | {r['batch']} | {r['side']} | {r['dtype']} | {r['status']} "
                f"| {_num(r.get('step_s'), '.3f')} | {_num(r.get('std_s'), '.3f')} | {r.get('steps', '-')} "
                f"| {_num(ratio)} | {_num(r.get('first_step_s'), '.1f')} | {_num(r.get('peak_gib'), '.1f')} "
                f"| {_num(r.get('mel'), '.4f')} |")

    notes = [n["text"] for n in kinds.get("note", [])]
    sections = kinds.get("section", [])
    if notes or sections:
        lines += ["", "## Skipped, failed, and time per section", ""]
        lines += [f"* {t}" for t in notes]
        lines += [f"* section {s['name']}: {s['seconds']:.0f} s" for s in sections]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FormatStrFormatter, NullFormatter

    def window_axis(ax):
        ax.set_xticks([0.4, 1, 5, 10, 20])
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(NullFormatter())

    rows = [r for r in rows if "jax_compress_ms" in r]
    if not rows:
        return
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    win = [r["window_s"] for r in rows]
    series = (("ref_{}_ms", "ref_{}_sd_ms", "original (PyTorch eager)", "o", "-"),
              ("compiled_{}_ms", "compiled_{}_sd_ms", "original (torch.compile)", "s", ":"),
              ("jax_{}_ms", "jax_{}_sd_ms", "jaxdac float32", "o", "-"),
              ("bf16_{}_ms", "bf16_{}_sd_ms", "jaxdac bfloat16", "x", "--"))
    for ax, op in zip(axes[:2], ("compress", "decompress")):
        for mean, sd, label, marker, style in series:
            pts = [r for r in rows if mean.format(op) in r]
            if pts:
                ax.errorbar([r["window_s"] for r in pts], [r[mean.format(op)] for r in pts],
                            yerr=[r[sd.format(op)] for r in pts], marker=marker, ls=style, capsize=3, label=label)
        ax.set(xscale="log", yscale="log", xlabel="window (s)", ylabel="time per chunk (ms)", title=op)
        window_axis(ax)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    ax = axes[2]
    for op in ("compress", "decompress"):
        ax.plot(win, [r[f"ratio_{op}"] for r in rows], marker="o", label=op)
    ax.axhline(1.0, color="k", lw=0.8)
    ax.set(xscale="log", xlabel="window (s)", ylabel="jaxdac / original", title="time ratio (float32)")
    window_axis(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.suptitle("DAC 44.1 kHz per-chunk latency on the GPU")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render(results: list[dict], out_dir: Path, png: bool = False) -> None:
    kinds = _by_kind(results)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.md").write_text(markdown(kinds))
    rows = chunk_rows(kinds)
    _write_csv(out_dir / "chunk_latency.csv", rows)
    _write_csv(out_dir / "end_to_end.csv", kinds.get("e2e", []))
    _write_csv(out_dir / "train_step.csv", kinds.get("train", []))
    if png:
        try:
            plot(rows, out_dir / "chunk_latency.png")
        except ImportError:
            pass


if __name__ == "__main__":
    out = Path(sys.argv[1])
    render([json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()], out, png=True)
    print((out / "report.md").read_text())
