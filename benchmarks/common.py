"""What every benchmark shares: the machine it ran on, the original's interpreter, running one
measurement in a fresh child process (its JSON result and its peak memory), and writing the results."""

from __future__ import annotations

import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """Processor model, the vector instruction sets that decide convolution speed, and the CPU count:
    every table states it, since the same code runs at different ratios on different processors."""
    model = "unknown processor"
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model == "unknown processor":
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    isa = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags) or "no AVX2"
    return f"{model} ({isa}), {os.cpu_count()} logical CPUs, {platform.machine()}"


def reference_python() -> Path:
    """The interpreter of the original implementation's environment; exits with how to build it."""
    python = Path(os.environ.get("JAXDAC_REFERENCE_PYTHON", REPO / ".venv-reference" / "bin" / "python"))
    if not python.exists():
        sys.exit(f"no reference interpreter at {python}: bash scripts/install_reference.sh .venv-reference")
    return python


def run_child(cmd: list[str], result: Path, env: dict, timeout: float) -> tuple[dict, float]:
    """Run ``cmd``, which writes ``result``; ``(that json, the child's peak RSS in MiB)``.

    The peak is the kernel's ``ru_maxrss`` of that one child (``os.wait4``): ``getrusage(RUSAGE_CHILDREN)``
    would give the maximum over every child so far."""
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - start > timeout:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
        code = os.waitstatus_to_exitcode(status)
        if code:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed ({code}):\n{err.read().decode()[-3000:]}")
    return json.loads(Path(result).read_text()), usage.ru_maxrss / 1024


def write_results(out_dir: Path, name: str, text: str, rows: list[dict]) -> None:
    """``out_dir/name.md`` (the table, as printed) and ``out_dir/name.csv`` (every row, every key)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.md").write_text(text if text.endswith("\n") else text + "\n")
    with open(out_dir / f"{name}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        writer.writeheader()
        writer.writerows(rows)
    print(text)
