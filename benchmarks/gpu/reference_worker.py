"""The ORIGINAL's side of ``benchmarks/gpu/bench.py``: DAC 1.0.0 on the GPU, one JSON command per line.

    python3 benchmarks/gpu/reference_worker.py [--device cuda] [--cudnn-benchmark] [--strict-fp32]

``benchmarks/reference_chunk_latency.py`` moved to the GPU. Builds ``dac.DAC`` (44.1 kHz) with the seeded
weights of ``scripts/reference_model.py::build_original`` (the values jaxdac loads through
``convert.from_state_dict``), moves it to ``--device`` (``cuda`` when there is one, else the CPU: the smoke
test), prints one JSON line describing itself, then answers one JSON line per command on stdin:

* ``{"op": "chunk", "kind": "encode"|"decode", "path": P, "variant": "eager"|"compile", "warmup": W,
  "runs": N, "budget_s": S, "out": P}``: one chunk of the original's ``compress`` / ``decompress`` loop,
  ``model.encode(x)`` (codes) with ``model.padding = False`` on the ``[1, 1, window]`` audio in P, or
  ``model.decode(model.quantizer.from_codes(c)[0])`` on the ``[1, n_q, frames]`` codes in P, under
  ``torch.inference_mode()``. The input is on the device before the clock starts and the output stays
  there; every timed call ends with ``torch.cuda.synchronize()``. The first call of a (variant, kind,
  shape) is timed apart (``first_s``: cuDNN set-up, or for ``compile`` the ``torch.compile`` compilation),
  then W warm-up calls (``warmup_s``), then up to N timed calls, fewer once S seconds have passed (at least
  3). ``out``: the codes of the last call, saved as int32.
* ``{"op": "compress", "src": AUDIO.npy, "dst": OUT.dac, "win": s, "sample_rate": sr, "calls": N}``: the
  public API as ``python -m dac encode`` runs it, ``model.compress(AudioSignal(tensor, sr), win_duration)``
  with the signal on the CPU (resampling and loudness there, each chunk moved to the GPU), N times; loading
  the .npy is inside the clock, as in ``benchmarks/reference_end_to_end.py``.
* ``{"op": "decompress", "src": IN.dac, "dst": OUT.npy, "calls": N}``: ``model.decompress(path)``, N times.
* ``{"op": "quit"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="auto", help="cuda, cpu or auto (cuda when available)")
    parser.add_argument("--case", default="dac_44khz")
    parser.add_argument("--cudnn-benchmark", action="store_true", help="torch.backends.cudnn.benchmark = True")
    parser.add_argument("--strict-fp32", action="store_true", help="no TF32 in convolutions and matmuls")
    args = parser.parse_args()

    # Replies go to the real stdout (a duplicate of fd 1); fd 1 itself then points at stderr, so nothing
    # the libraries print (Python or C level, torch.compile included) can corrupt the protocol.
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    import numpy as np
    import torch

    import model_cases
    from reference_model import build_original

    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))
    torch.backends.cudnn.benchmark = args.cudnn_benchmark
    if args.strict_fp32:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    start = time.perf_counter()
    model = build_original(model_cases.presets()[args.case], model_cases.seed_of(args.case)).to(device)
    sync()
    build_s = time.perf_counter() - start
    from importlib.metadata import version

    info = {"ready": True, "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
            "dac": version("descript-audio-codec"), "audiotools": version("descript-audiotools"),
            "device": str(device), "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None,
            "threads": torch.get_num_threads(), "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32, "build_s": build_s}
    reply.write(json.dumps(info) + "\n")

    def encode(x):
        return model.encode(x)[1]

    def decode(codes):
        return model.decode(model.quantizer.from_codes(codes)[0])

    compiled = {}

    def chunk_fn(kind: str, variant: str):
        fn = encode if kind == "encode" else decode
        if variant == "eager":
            return fn
        if kind not in compiled:
            import torch._dynamo

            # One graph per window shape and function: more shapes than dynamo's default cache holds.
            torch._dynamo.config.cache_size_limit = 64
            compiled[kind] = torch.compile(fn, dynamic=False)
        return compiled[kind]

    def timed_call(fn, arg):
        begin = time.perf_counter()
        out = fn(arg)
        sync()
        return time.perf_counter() - begin, out

    seen = set()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        reply_data: dict = {}
        if cmd["op"] == "chunk":
            model.padding = False  # the original's chunked mode: unpadded convolutions
            data = np.load(cmd["path"])
            if cmd["kind"] == "encode":
                arg = torch.from_numpy(data).to(device)
            else:
                arg = torch.from_numpy(data.astype(np.int64)).to(device)
            sync()
            fn = chunk_fn(cmd["kind"], cmd.get("variant", "eager"))
            key = (cmd.get("variant", "eager"), cmd["kind"], tuple(arg.shape))
            with torch.inference_mode():
                out = None
                if key not in seen:
                    seen.add(key)
                    reply_data["first_s"], out = timed_call(fn, arg)
                warm = []
                for _ in range(cmd.get("warmup", 0)):
                    t, out = timed_call(fn, arg)
                    warm.append(t)
                times, begin = [], time.perf_counter()
                for k in range(cmd.get("runs", 0)):
                    if k >= 3 and time.perf_counter() - begin > cmd.get("budget_s", float("inf")):
                        break
                    t, out = timed_call(fn, arg)
                    times.append(t)
                if out is None:
                    _, out = timed_call(fn, arg)
            if cmd.get("out"):
                np.save(cmd["out"], out.cpu().numpy().astype(np.int32))
            reply_data.update(times=times, warmup_s=warm, shape=list(out.shape))
        elif cmd["op"] == "compress":
            from audiotools import AudioSignal

            times = []
            for _ in range(cmd.get("calls", 1)):
                begin = time.perf_counter()
                signal = AudioSignal(torch.from_numpy(np.load(cmd["src"])), cmd["sample_rate"])
                dac_file = model.compress(signal, win_duration=cmd["win"])
                sync()
                times.append(time.perf_counter() - begin)
            dac_file.save(cmd["dst"])
            reply_data.update(times=times, chunk_length=int(dac_file.chunk_length),
                              frames=int(dac_file.codes.shape[-1]))
        elif cmd["op"] == "decompress":
            times = []
            for _ in range(cmd.get("calls", 1)):
                begin = time.perf_counter()
                signal = model.decompress(cmd["src"])
                sync()
                times.append(time.perf_counter() - begin)
            np.save(cmd["dst"], signal.audio_data.cpu().numpy())
            reply_data.update(times=times, samples=int(signal.audio_data.shape[-1]))
        else:
            reply_data["error"] = f"unknown op {cmd['op']!r}"
        if device.type == "cuda":
            reply_data["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        reply.write(json.dumps(reply_data) + "\n")


if __name__ == "__main__":
    main()
