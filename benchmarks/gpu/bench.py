"""jaxdac against the original DAC on one GPU, in sections that fit one call of the device machine (issue 16).

    python3 benchmarks/gpu/bench.py inference|train|report --out-dir $OUT [options]

``benchmarks/gpu/run.sh`` runs the sections one after the other, each in a fresh process (so the GPU memory
of one is free for the next), under one global deadline (``$GPU_BENCH_DEADLINE``, seconds since the epoch):
every section also has a budget of its own, checks it between units of work (a window, a pipeline, a
training run) and skips what is left, recording what it skipped. Every result is appended to
``results.jsonl`` as soon as it exists and the tables are rewritten from it, so a run stopped at any point
leaves what it measured.

``inference`` (jaxdac in this process on JAX's default device, the original in
``benchmarks/gpu/reference_worker.py`` on cuda, the same seeded full-size 44.1 kHz weights):

1. the paper's per-chunk table, ``benchmarks/chunk_latency.py`` on the GPU: for each window, one
   ``[1, 1, window]`` chunk through encoder + quantizer (compress) and one chunk of the original's codes
   through ``from_codes`` + decoder (decompress). jaxdac: ``inference._encode_chunks`` /
   ``_decode_chunks`` (what ``compress(..., chunking="legacy")`` calls per chunk), ended by
   ``.block_until_ready()``; the original: ``model.encode`` / ``model.decode(from_codes)`` with
   ``padding = False`` under ``torch.inference_mode()``, ended by ``torch.cuda.synchronize()``. Inputs are
   on the device before the clock starts. First call of each shape timed apart (jaxdac: trace + compile),
   then ``--warmup`` calls, then up to ``--runs`` timed calls per side in ``--rounds`` alternating blocks,
   fewer where the window's ``--window-budget-s`` would be exceeded (the row says how many);
2. jaxdac ``dtype="bfloat16"`` rows for ``--bf16-windows``: time, code agreement with jaxdac float32 and
   with the original, mel distance of the decoded audio to float32's;
3. end-to-end: ``--minutes`` of 48 kHz stereo (``benchmarks/end_to_end.py::make_audio``) through
   ``jaxdac.compress`` / ``jaxdac.decompress`` (``--pipelines``: legacy, seamless, ``NAME_bN`` for
   ``chunk_batch=N``) and the original's ``model.compress`` / ``model.decompress`` at each of ``--e2e-wins``;
   ``1 + --e2e-repeats`` calls, the first reported apart (jaxdac: compiles);
4. with ``--torch-compile``: the original under ``torch.compile`` (``dynamic=False``) for
   ``--compile-windows``, first call (compilation) reported apart.

``train``: seconds per step at ``--train-batch`` excerpts of 0.38 s (``benchmarks/gpu/train_child.py``, a
fresh process per side): the original first, then jaxdac float32 (and ``--train-dtypes``). On an
out-of-memory failure the batch is halved (both sides re-run at the smaller batch) while time remains.

``report``: ``report.md``, ``chunk_latency.csv``, ``end_to_end.csv``, ``train_step.csv`` and
``chunk_latency.png`` (with matplotlib) from ``results.jsonl``.
"""

from __future__ import annotations

import argparse
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

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO / "tests"), str(REPO / "scripts"), str(REPO / "src"), str(HERE)]

WINDOWS = [0.37, 0.38, 0.42, 0.46, 0.5, 1.0, 5.0, 10.0, 20.0]
RESULTS = "results.jsonl"


# ---------------------------------------------------------------------------------------------- helpers


class Clock:
    """The global deadline (less ``reserve_s``, kept for the sections after this one) and the current
    part's budget: ``left()`` is the time to the nearer of the two."""

    def __init__(self, section_budget_s: float, reserve_s: float = 0.0):
        deadline = float(os.environ.get("GPU_BENCH_DEADLINE", time.time() + 3600)) - reserve_s
        self.end = min(deadline, time.time() + section_budget_s)

    def left(self) -> float:
        return self.end - time.time()


class Results:
    """``results.jsonl``: one JSON object per line, ``kind`` saying what it is."""

    def __init__(self, out_dir: Path):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / RESULTS
        self.out_dir = out_dir

    def add(self, kind: str, **row) -> dict:
        row = {"kind": kind, **row}
        with open(self.path, "a") as f:
            f.write(json.dumps(row, default=float) + "\n")
        print(f"[{time.strftime('%H:%M:%S')}] {json.dumps(row, default=float)}", flush=True)
        return row

    def note(self, text: str) -> None:
        self.add("note", text=text)

    def all(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]

    def render(self, png: bool = False) -> None:
        """Rewrite the tables; a rendering error never stops the measurements."""
        try:
            import report

            report.render(self.all(), self.out_dir, png=png)
        except Exception as err:  # noqa: BLE001
            print(f"report rendering failed: {err!r}", file=sys.stderr, flush=True)


def stats(times: list[float]) -> tuple[float, float]:
    """Mean and standard deviation in ms."""
    ms = [t * 1e3 for t in times]
    return (statistics.fmean(ms) if ms else float("nan")), (statistics.stdev(ms) if len(ms) > 1 else 0.0)


def timed(fn, arg, runs: int, budget_s: float = float("inf"), at_least: int = 3) -> list[float]:
    """Up to ``runs`` calls of ``fn(arg)`` (which blocks until its result is ready), fewer once ``budget_s``
    seconds have passed (at least ``at_least``); the seconds of each."""
    times, begin = [], time.perf_counter()
    for k in range(runs):
        if k >= at_least and time.perf_counter() - begin > budget_s:
            break
        start = time.perf_counter()
        fn(arg)
        times.append(time.perf_counter() - start)
    return times


class Reference:
    """The original in ``reference_worker.py`` (one JSON line per command), like ``chunk_latency.Reference``."""

    def __init__(self, python: str, extra: list[str]):
        """Starts the worker; ``ready()`` waits for it (it builds its model meanwhile)."""
        self.proc = subprocess.Popen([python, str(HERE / "reference_worker.py"), *extra],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.info: dict = {}

    def ready(self) -> dict:
        self.info = self._read()
        return self.info

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the reference worker exited (its stderr is in the log)")
        return json.loads(line)

    def __call__(self, **cmd) -> dict:
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        return self._read()

    def close(self) -> None:
        try:
            self.proc.stdin.write(json.dumps({"op": "quit"}) + "\n")
            self.proc.stdin.flush()
            self.proc.wait(timeout=60)
        except Exception:  # noqa: BLE001
            self.proc.kill()


def gpu_info() -> dict:
    """nvidia-smi's view of the GPU (None without one) and the CPU (``common.machine``)."""
    from common import machine

    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,driver_version,clocks.max.sm",
                              "--format=csv,noheader"], capture_output=True, text=True, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        smi = None
    return {"nvidia_smi": smi or None, "cpu": machine()}


def jax_info() -> dict:
    import jax
    import jaxlib

    device = jax.devices()[0]
    info = {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "backend": jax.default_backend(),
            "device": f"{device.platform}: {device.device_kind}", "devices": len(jax.devices()),
            "default_matmul_precision": str(jax.config.jax_default_matmul_precision),
            "python": platform.python_version(), "platform": platform.platform(),
            "mem_fraction": os.environ.get("XLA_PYTHON_CLIENT_MEM_FRACTION", "default"),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}
    for name in ("flax", "optax", "numpy"):
        try:
            info[name] = __import__(name).__version__
        except Exception:  # noqa: BLE001
            info[name] = None
    return info


# -------------------------------------------------------------------------------------------- inference


def chunk_table(args, res: Results, ours, ref: Reference, tmp: Path, kept: dict) -> None:
    """Section 1: the per-chunk table in float32. Fills ``kept`` with what the later passes need, per window."""
    import jax.numpy as jnp

    import chunk_latency
    from jaxdac import geometry

    clock = Clock(args.chunk_budget_s, args.train_reserve_s)
    config = ours.model.config
    for win in args.windows:
        if clock.left() <= 0:
            res.note(f"chunk table: window {win:g} s skipped (section budget or deadline reached)")
            continue
        window, hop = geometry.chunk_plan(config, 10 * config.sample_rate * 60, win)
        x_np = chunk_latency.make_audio(config.sample_rate, window)
        audio_path, codes_path = tmp / f"x_{win:g}.npy", tmp / f"codes_{win:g}.npy"
        np.save(audio_path, x_np)
        x = jnp.asarray(x_np)
        row = {"window_s": win, "window_samples": window, "hop_samples": hop,
               "hop_ms": 1e3 * hop / config.sample_rate}

        # First calls (jaxdac compiles), then warm-up calls, whose times say how many timed runs fit.
        start = time.perf_counter()
        our_codes = np.asarray(ours.encode(x))
        row["jax_first_compress_s"] = time.perf_counter() - start
        r = ref(op="chunk", kind="encode", path=str(audio_path), warmup=args.warmup, runs=0, out=str(codes_path))
        ref_codes = np.load(codes_path)
        codes = jnp.asarray(ref_codes)
        start = time.perf_counter()
        ours.decode(codes)
        row["jax_first_decompress_s"] = time.perf_counter() - start
        rd = ref(op="chunk", kind="decode", path=str(codes_path), warmup=args.warmup, runs=0)
        jc, jd = timed(ours.encode, x, args.warmup, at_least=0), timed(ours.decode, codes, args.warmup, at_least=0)
        per_run = sum(min(t) if t else 0.0 for t in (jc, jd, r["warmup_s"], rd["warmup_s"]))
        runs = max(args.min_runs, min(args.runs, int(args.window_budget_s / max(per_run, 1e-6))))
        row.update(runs_planned=runs, ref_first_compress_s=r.get("first_s"), ref_first_decompress_s=rd.get("first_s"),
                   chunk_frames=int(ref_codes.shape[-1]),
                   codes_equal_pct=100 * float((our_codes == ref_codes).mean()) if our_codes.shape == ref_codes.shape
                   else 0.0)

        times = {k: [] for k in ("jax_c", "jax_d", "ref_c", "ref_d")}
        blocks = [runs // args.rounds + (i < runs % args.rounds) for i in range(args.rounds)]
        block_budget = 2 * args.window_budget_s / (4 * args.rounds)  # per side, op and block; slack x2
        for i, n in enumerate(b for b in blocks if b):
            for side in (("jax", "ref") if i % 2 == 0 else ("ref", "jax")):
                if side == "jax":
                    times["jax_c"] += timed(ours.encode, x, n, block_budget)
                    times["jax_d"] += timed(ours.decode, codes, n, block_budget)
                else:
                    times["ref_c"] += ref(op="chunk", kind="encode", path=str(audio_path), runs=n,
                                          budget_s=block_budget)["times"]
                    times["ref_d"] += ref(op="chunk", kind="decode", path=str(codes_path), runs=n,
                                          budget_s=block_budget)["times"]
        for key, label in (("ref_c", "ref_compress"), ("jax_c", "jax_compress"),
                           ("ref_d", "ref_decompress"), ("jax_d", "jax_decompress")):
            row[f"{label}_ms"], row[f"{label}_sd_ms"] = stats(times[key])
            row[f"{label}_runs"] = len(times[key])
        row["runs"] = min(len(t) for t in times.values())
        row["ratio_compress"] = row["jax_compress_ms"] / row["ref_compress_ms"]
        row["ratio_decompress"] = row["jax_decompress_ms"] / row["ref_decompress_ms"]
        row["ref_peak_gib"] = rd.get("peak_gib")
        res.add("chunk", **row)
        res.render()
        kept[win] = {"x": x, "codes": codes, "our_codes": our_codes, "ref_codes": ref_codes,
                     "audio_path": audio_path, "codes_path": codes_path, "runs": runs}


def bf16_rows(args, res: Results, ours, kept: dict) -> None:
    """Section 2: jaxdac in bfloat16 for ``--bf16-windows``: time, code agreement, mel distance."""
    import chunk_latency

    clock = Clock(args.bf16_budget_s, args.train_reserve_s)
    windows = [w for w in args.bf16_windows if w in kept]
    if not windows:
        return
    low = None
    for win in windows:
        if clock.left() <= 0:
            res.note(f"bfloat16: window {win:g} s skipped (section budget or deadline reached)")
            continue
        if low is None:
            low = chunk_latency.Jaxdac("bfloat16")
        k = kept[win]
        row = {"window_s": win}
        start = time.perf_counter()
        low_codes = np.asarray(low.encode(k["x"]))
        row["first_compress_s"] = time.perf_counter() - start
        start = time.perf_counter()
        low.decode(k["codes"])
        row["first_decompress_s"] = time.perf_counter() - start
        timed(low.encode, k["x"], args.warmup, at_least=0)
        timed(low.decode, k["codes"], args.warmup, at_least=0)
        budget = args.window_budget_s / 4
        c, d = timed(low.encode, k["x"], k["runs"], budget), timed(low.decode, k["codes"], k["runs"], budget)
        row["compress_ms"], row["compress_sd_ms"] = stats(c)
        row["decompress_ms"], row["decompress_sd_ms"] = stats(d)
        row["runs"] = min(len(c), len(d))
        ref_codes, our_codes = k["ref_codes"], k["our_codes"]
        row["agreement_f32_pct"] = 100 * float((low_codes == our_codes).mean())
        row["agreement_f32_q1_pct"] = 100 * float((low_codes[:, 0] == our_codes[:, 0]).mean())
        row["agreement_original_pct"] = 100 * float((low_codes == ref_codes).mean()) \
            if low_codes.shape == ref_codes.shape else 0.0
        y32 = np.asarray(ours.decode(k["codes"]))
        y16 = np.asarray(low.decode(k["codes"]), np.float32)
        row["mel_distance"] = chunk_latency.mel_distance(y16, y32, ours.model.config.sample_rate)
        row["max_abs_error"] = float(np.abs(y16 - y32).max())
        res.add("chunk_bf16", **row)
        res.render()


def torch_compile_rows(args, res: Results, ref: Reference, kept: dict) -> None:
    """Section 4 (``--torch-compile``): the original under ``torch.compile`` for ``--compile-windows``."""
    clock = Clock(args.compile_budget_s, args.train_reserve_s)
    for win in [w for w in args.compile_windows if w in kept]:
        if clock.left() <= 0:
            res.note(f"torch.compile: window {win:g} s skipped (section budget or deadline reached)")
            continue
        k = kept[win]
        row = {"window_s": win}
        for kind, op, path in (("encode", "compress", k["audio_path"]), ("decode", "decompress", k["codes_path"])):
            r = ref(op="chunk", kind=kind, path=str(path), variant="compile", warmup=args.warmup, runs=k["runs"],
                    budget_s=args.window_budget_s / 4)
            row[f"first_{op}_s"] = r.get("first_s")
            row[f"{op}_ms"], row[f"{op}_sd_ms"] = stats(r["times"])
            row[f"{op}_runs"] = len(r["times"])
        res.add("chunk_compile", **row)
        res.render()


def end_to_end(args, res: Results, ours, ref: Reference, tmp: Path) -> None:
    """Section 3: whole-file compress / decompress through the public APIs, both sides."""
    import end_to_end as e2e
    import jaxdac

    clock = Clock(args.e2e_budget_s, args.train_reserve_s)
    audio = e2e.make_audio(args.minutes, 2)
    audio_path = tmp / "e2e_audio.npy"
    np.save(audio_path, audio)
    audio_s = audio.shape[-1] / e2e.SAMPLE_RATE
    del audio
    calls = 1 + args.e2e_repeats
    for win in args.e2e_wins:
        for op in ("compress", "decompress"):
            for name in args.pipelines:
                if clock.left() <= 0:
                    res.note(f"end-to-end: {name} {op} at {win:g} s skipped (section budget or deadline reached)")
                    continue
                dac_path, out_path = tmp / f"{name}_{win:g}.dac", tmp / f"{name}_{win:g}.npy"
                if op == "decompress" and not dac_path.exists():
                    res.note(f"end-to-end: {name} decompress at {win:g} s skipped (no compressed file)")
                    continue
                if name == "original":
                    if op == "compress":
                        r = ref(op="compress", src=str(audio_path), dst=str(dac_path), win=win,
                                sample_rate=e2e.SAMPLE_RATE, calls=calls)
                    else:
                        r = ref(op="decompress", src=str(dac_path), dst=str(out_path), calls=calls)
                    times = r["times"]
                else:
                    chunking, _, batch = name.partition("_b")
                    chunk_batch = int(batch or 1)
                    times = []
                    for _ in range(calls):
                        start = time.perf_counter()
                        if op == "compress":
                            out = jaxdac.compress(ours.model, np.load(audio_path), e2e.SAMPLE_RATE, win,
                                                  chunking=chunking, chunk_batch=chunk_batch)
                        else:
                            out = jaxdac.decompress(ours.model, jaxdac.read_dac_file(dac_path), win_duration=win,
                                                    chunk_batch=chunk_batch)
                        times.append(time.perf_counter() - start)
                    if op == "compress":
                        jaxdac.write_dac_file(out, dac_path, overwrite=True)
                    del out
                warm = float(np.median(times[1:])) if len(times) > 1 else float("nan")
                res.add("e2e", win=win, pipeline=name, op=op, audio_s=audio_s, first_s=times[0], warm_s=warm,
                        warm_calls=len(times) - 1, x_real_time=audio_s / (warm if len(times) > 1 else times[0]))
                res.render()
        ours_path, theirs = tmp / f"legacy_{win:g}.dac", tmp / f"original_{win:g}.dac"
        if ours_path.exists() and theirs.exists():
            a = np.asarray(jaxdac.read_dac_file(ours_path).codes)
            b = np.asarray(jaxdac.read_dac_file(theirs).codes)
            res.add("e2e_codes", win=win, shapes=f"{a.shape} / {b.shape}",
                    equal_pct=100 * float((a == b).mean()) if a.shape == b.shape else 0.0)


def inference(args, res: Results) -> None:
    import chunk_latency

    begin = time.perf_counter()
    res.add("machine_jax", **jax_info())
    extra = (["--cudnn-benchmark"] if args.cudnn_benchmark else []) + (["--strict-fp32"] if args.strict_fp32 else [])
    ref = Reference(args.python_ref, extra)  # builds its model while jaxdac builds its own
    ours = chunk_latency.Jaxdac("float32")
    res.add("machine_ref", **ref.ready())
    tmp = Path(tempfile.mkdtemp(prefix="gpu_bench_"))
    try:
        kept = {}
        for name, fn in (("chunk", lambda: chunk_table(args, res, ours, ref, tmp, kept)),
                         ("bf16", lambda: bf16_rows(args, res, ours, kept)),
                         ("e2e", lambda: end_to_end(args, res, ours, ref, tmp)),
                         ("torch_compile", lambda: torch_compile_rows(args, res, ref, kept))):
            if name not in args.sections:
                continue
            start = time.perf_counter()
            try:
                fn()
            except Exception as err:  # noqa: BLE001 -- a failed part must not lose the others
                import traceback

                traceback.print_exc()
                res.note(f"{name} failed: {err!r}")
            res.add("section", name=name, seconds=time.perf_counter() - start)
    finally:
        ref.close()
        res.add("section", name="inference", seconds=time.perf_counter() - begin)
        res.render(png=True)


# ------------------------------------------------------------------------------------------------ train


def train(args, res: Results) -> None:
    """Section 5: seconds per training step, the original then jaxdac, halving the batch on OOM."""
    from common import run_child

    begin = time.perf_counter()
    clock = Clock(args.train_budget_s)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(REPO / "src"), str(REPO / "tests"), str(REPO / "scripts"), os.environ.get("PYTHONPATH", "")]))
    env.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.92")  # alone on the GPU
    env["JAXDAC_COMPILATION_CACHE"] = "off"

    def run(side: str, size: int, dtype: str) -> dict:
        left = clock.left()
        row = {"case": args.train_case, "batch": size, "side": side, "dtype": dtype}
        if left < 20:
            return res.add("train", status="skipped (no time left)", **row)
        with tempfile.TemporaryDirectory() as tmp:
            result = Path(tmp) / "result.json"
            python = args.python_ref if side == "original" else sys.executable
            cmd = [python, str(HERE / "train_child.py"), side, args.train_case, str(size), dtype, str(result),
                   "--steps", str(args.train_steps), "--budget-s", str(max(5.0, min(args.train_step_budget_s, left / 3)))]
            start = time.perf_counter()
            try:
                out, rss = run_child(cmd, result, env, timeout=left)
            except SystemExit as err:  # run_child's way of saying the child failed
                text = str(err)
                print(text[-3000:], file=sys.stderr, flush=True)
                oom = any(s in text for s in ("out of memory", "RESOURCE_EXHAUSTED", "OutOfMemory", "Out of memory"))
                status = "out of memory" if oom else ("timed out" if time.perf_counter() - start >= left - 1 else "failed")
                return res.add("train", status=status, error=text[-300:], **row)
        times = np.asarray(out["times"])
        return res.add("train", status="ok", step_s=float(times.mean()), std_s=float(times.std()),
                       steps=len(times), first_step_s=out["first"], peak_gib=out["peak_gib"], host_rss_mib=rss,
                       mel=out["mel"], device=out["device"], **row)

    size = args.train_batch
    final = None
    while size >= 1 and clock.left() > 20:
        original = run("original", size, "float32")
        if original["status"] == "out of memory":
            size //= 2
            continue
        ours = run("jaxdac", size, "float32")
        res.render()
        if ours["status"] == "out of memory" and clock.left() > 60:
            size //= 2
            continue
        final = size
        break
    if final is None:
        res.note(f"training: no batch measured on both sides (batch reached {size}, {clock.left():.0f} s left)")
    for dtype in [d for d in args.train_dtypes if d != "float32"]:
        if final is not None:
            run("jaxdac", final, dtype)
    res.add("section", name="train", seconds=time.perf_counter() - begin)
    res.render(png=True)


# ----------------------------------------------------------------------------------------------- main


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("section", choices=["inference", "train", "report"])
    p.add_argument("--out-dir", type=Path, default=Path(os.environ.get("OUT") or REPO / "benchmarks" / "gpu" / "out"))
    p.add_argument("--python-ref", default=os.environ.get("JAXDAC_REFERENCE_PYTHON") or sys.executable,
                   help="interpreter of the original (default: this one; the device image holds both)")
    p.add_argument("--sections", nargs="+", default=["chunk", "bf16", "e2e", "torch_compile"],
                   help="parts of the inference section to run (torch_compile also needs --torch-compile)")
    # per-chunk table
    p.add_argument("--windows", type=float, nargs="+", default=WINDOWS)
    p.add_argument("--runs", type=int, default=200, help="timed calls per side and window, at most")
    p.add_argument("--min-runs", type=int, default=10)
    p.add_argument("--window-budget-s", type=float, default=5.0,
                   help="timed seconds per window, both sides and operations together; bounds the runs")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls after the first of each shape")
    p.add_argument("--rounds", type=int, default=2, help="alternating blocks per window")
    p.add_argument("--chunk-budget-s", type=float, default=150)
    p.add_argument("--bf16-windows", type=float, nargs="*", default=[0.38, 1.0, 5.0, 20.0])
    p.add_argument("--bf16-budget-s", type=float, default=50)
    p.add_argument("--torch-compile", action="store_true", help="also time the original under torch.compile")
    p.add_argument("--compile-windows", type=float, nargs="*", default=[0.38, 5.0, 20.0])
    p.add_argument("--compile-budget-s", type=float, default=120)
    p.add_argument("--cudnn-benchmark", action="store_true", help="the original with cudnn.benchmark = True")
    p.add_argument("--strict-fp32", action="store_true",
                   help="no TF32 on either side (torch allow_tf32 off; JAX default matmul precision 'highest')")
    # end-to-end
    p.add_argument("--minutes", type=float, default=10.0, help="minutes of 48 kHz stereo audio")
    p.add_argument("--e2e-wins", type=float, nargs="+", default=[5.0, 20.0])
    p.add_argument("--pipelines", nargs="+", default=["legacy", "original"],
                   help="legacy, seamless, original; NAME_bN runs jaxdac with chunk_batch=N")
    p.add_argument("--e2e-repeats", type=int, default=1, help="calls after the first")
    p.add_argument("--e2e-budget-s", type=float, default=100)
    # training
    p.add_argument("--train-case", default="dac_44khz")
    p.add_argument("--train-batch", type=int, default=72)
    p.add_argument("--train-steps", type=int, default=5)
    p.add_argument("--train-step-budget-s", type=float, default=30, help="timed seconds per side, at most")
    p.add_argument("--train-dtypes", nargs="+", default=["float32"])
    p.add_argument("--train-budget-s", type=float, default=300)
    p.add_argument("--train-reserve-s", type=float, default=160,
                   help="seconds before the global deadline that the inference section leaves to the training one "
                        "(run.sh passes 0 when SECTIONS has no train)")
    args = p.parse_args(argv)
    if not args.torch_compile and "torch_compile" in args.sections:
        args.sections.remove("torch_compile")
    return args


def main() -> None:
    args = parse_args()
    if args.strict_fp32:
        os.environ["JAX_DEFAULT_MATMUL_PRECISION"] = "highest"
    res = Results(args.out_dir)
    if args.section != "report" and not any(r["kind"] == "machine_gpu" for r in res.all()):
        res.add("machine_gpu", **gpu_info())
    if args.section == "inference":
        # Room on the GPU for the original's worker beside JAX's preallocated pool.
        os.environ.setdefault("XLA_PYTHON_CLIENT_MEM_FRACTION", "0.45")
        res.add("settings", argv=sys.argv[1:], **{k: (str(v) if isinstance(v, Path) else v)
                                                 for k, v in vars(args).items()})
        inference(args, res)
    elif args.section == "train":
        train(args, res)
    else:
        res.render(png=True)
        print((args.out_dir / "report.md").read_text())


if __name__ == "__main__":
    main()
