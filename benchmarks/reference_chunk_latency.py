"""The ORIGINAL's side of ``benchmarks/chunk_latency.py``: a worker under the reference interpreter.

    .venv-reference/bin/python benchmarks/reference_chunk_latency.py --case dac_44khz --threads 2

Builds ``dac.DAC`` with the seeded weights of ``scripts/reference_model.py::build_original`` (the same
values jaxdac loads through ``convert.from_state_dict``), switches it to the legacy unpadded chunk mode
(``model.padding = False``), then answers one JSON command per line on stdin with one JSON line on
stdout:

* ``{"op": "encode", "audio": PATH, "runs": N, "codes_out": PATH}``: times ``model.encode(x)`` on the
  ``[1, 1, window]`` float32 array in PATH, N times (the first call of a new shape is timed separately
  as ``first_s``), and saves the codes it produced to ``codes_out``.
* ``{"op": "decode", "codes": PATH, "runs": N}``: times ``model.decode(model.quantizer.from_codes(c)[0])``
  on the ``[1, n_q, frames]`` codes in PATH.
* ``{"op": "quit"}``.

This is exactly the work one iteration of the original's ``compress`` / ``decompress`` chunk loop does on
the model (the paper's per-chunk times), under ``torch.no_grad()`` with ``torch.set_num_threads``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "scripts")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", default="dac_44khz")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()

    # Replies go to the real stdout; anything the libraries print goes to stderr.
    reply = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr

    import numpy as np
    import torch

    import model_cases
    from reference_model import build_original

    torch.set_num_threads(args.threads)
    config = model_cases.presets()[args.case]
    model = build_original(config, model_cases.seed_of(args.case))
    model.padding = False  # the original's chunked mode: unpadded convolutions
    from importlib.metadata import version

    reply.write(json.dumps({"ready": True, "torch": torch.__version__, "dac": version("descript-audio-codec"),
                            "threads": torch.get_num_threads()}) + "\n")

    def timed(fn, runs):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - start)
        return times, out

    seen = set()
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd["op"] == "quit":
            break
        with torch.no_grad():
            if cmd["op"] == "encode":
                x = torch.from_numpy(np.load(cmd["audio"]))
                fn = lambda: model.encode(x)[1]  # noqa: E731
                key = ("encode", tuple(x.shape))
            else:
                codes = torch.from_numpy(np.load(cmd["codes"]).astype(np.int64))
                fn = lambda: model.decode(model.quantizer.from_codes(codes)[0])  # noqa: E731
                key = ("decode", tuple(codes.shape))
            first = None
            if key not in seen:
                seen.add(key)
                first, _ = timed(fn, 1)
                first = first[0]
            times, out = timed(fn, cmd["runs"])
            if cmd["op"] == "encode" and cmd.get("codes_out"):
                np.save(cmd["codes_out"], out.numpy().astype(np.int32))
        reply.write(json.dumps({"times": times, "first_s": first, "shape": list(out.shape),
                                "load": os.getloadavg()}) + "\n")


if __name__ == "__main__":
    main()
