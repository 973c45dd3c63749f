#!/usr/bin/env bash
# jaxdac against the original DAC on the device machine's GPU, in ONE call of the device tool (issue 16):
# the paper's per-chunk table (float32 both sides, jaxdac bfloat16, optionally the original under
# torch.compile), end-to-end compress / decompress through both public APIs, and seconds per training step.
#
# Here, once (PyPI reachable):   bash benchmarks/gpu/prepare_wheels.sh       # -> benchmarks/gpu/wheels/
# On the device machine:         bash benchmarks/gpu/run.sh                  # writes at most 7 files to $OUT
#   device tool call: command "bash benchmarks/gpu/run.sh", carry ["benchmarks/gpu/wheels"], timeout_s 560
# On a CPU (smoke test of the whole path, a few minutes, nothing installed):
#                                SMOKE=1 bash benchmarks/gpu/run.sh
#
# Environment:
#   BUDGET_S    global deadline in seconds from the start of this script, setup included (default 450);
#               every section stops starting new work at it and is killed 25 s after it
#   SECTIONS    "inference train" (default) or either alone
#   BENCH_ARGS  extra options for benchmarks/gpu/bench.py, e.g. "--torch-compile --runs 100 --minutes 5"
#               (python3 benchmarks/gpu/bench.py --help lists them)
#   WHEELS      folder of the carried wheels (default benchmarks/gpu/wheels)
#   OUT         where the results go (the device tool sets it; default /tmp/jaxdac_gpu_out)
#   PY, REF_PY  interpreters of jaxdac and of the original (device: python3 for both; smoke: .venv and
#               .venv-reference)
#
# Output in $OUT: report.md (machine, settings, every table, what was skipped), chunk_latency.csv,
# end_to_end.csv, train_step.csv, chunk_latency.png (with matplotlib), results.jsonl (every measurement as
# it was taken), log.txt (this script's output).
set -uo pipefail
START=$(date +%s)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
SMOKE=${SMOKE:-0}
if [ "$SMOKE" = 1 ]; then BUDGET_S=${BUDGET_S:-540}; else BUDGET_S=${BUDGET_S:-450}; fi
export GPU_BENCH_DEADLINE=$((START + BUDGET_S))
OUT=${OUT:-/tmp/jaxdac_gpu_$([ "$SMOKE" = 1 ] && echo smoke || echo out)}
mkdir -p "$OUT"
rm -f "$OUT"/{results.jsonl,log.txt,report.md,chunk_latency.csv,end_to_end.csv,train_step.csv,chunk_latency.png}

main() {
    export PYTHONUNBUFFERED=1 JAXDAC_COMPILATION_CACHE=off TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-1}
    echo "== benchmarks/gpu/run.sh at $(date -u '+%Y-%m-%d %H:%M:%S UTC'), budget ${BUDGET_S} s, SMOKE=$SMOKE, OUT=$OUT"

    if [ "$SMOKE" = 1 ]; then
        # This checkout's environments, JAX on the CPU; tiny windows, few runs, seconds of audio, the tiny
        # training case. Checks that every section runs and renders, not speed.
        PY=${PY:-$REPO/.venv/bin/python}
        REF_PY=${REF_PY:-$REPO/.venv-reference/bin/python}
        export JAX_PLATFORMS=cpu
        MODE_ARGS=(--windows 0.38 1.0 --runs 4 --min-runs 2 --warmup 1 --window-budget-s 4 --bf16-windows 0.38
                   --minutes 0.05 --e2e-wins 1 --pipelines legacy original --e2e-repeats 1
                   --train-case tiny --train-batch 2 --train-steps 2 --train-step-budget-s 10)
    else
        PY=${PY:-python3}
        REF_PY=${REF_PY:-$PY}
        WHEELS=${WHEELS:-benchmarks/gpu/wheels}
        # The original's pure-Python packages (and soundfile/cffi, which jaxdac needs too) that the image lacks,
        # carried as wheels (benchmarks/gpu/prepare_wheels.sh); installed beside the image's packages.
        if compgen -G "$WHEELS/*.whl" >/dev/null; then
            PIP_ROOT_USER_ACTION=ignore "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
                "$WHEELS"/*.whl || echo "WARNING: installing the wheels of $WHEELS failed"
            export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
        else
            echo "WARNING: no wheels in $WHEELS: run benchmarks/gpu/prepare_wheels.sh here and carry the folder"
        fi
        MODE_ARGS=()
    fi
    export PYTHONPATH=$REPO/src${PYTHONPATH:+:$PYTHONPATH}
    read -r -a EXTRA_ARGS <<< "${BENCH_ARGS:-}"
    case " ${SECTIONS:-inference train} " in *" train "*) ;; *) MODE_ARGS+=(--train-reserve-s 0) ;; esac

    echo "== machine"
    nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm,power.limit --format=csv 2>/dev/null \
        || echo "no nvidia-smi: no NVIDIA GPU here"
    "$PY" -c 'import jax, jaxlib, flax, sys; print("jaxdac side: python", sys.version.split()[0], "jax",
        jax.__version__, "jaxlib", jaxlib.__version__, "flax", flax.__version__, "devices", jax.devices())' \
        || echo "WARNING: JAX failed to start"
    "$REF_PY" -W ignore -c 'import torch, dac, audiotools; print("original side: torch", torch.__version__,
        "cuda", torch.version.cuda, "gpu", torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "dac", dac.__version__, "audiotools", audiotools.__version__)' || echo "WARNING: the original failed to import"

    for section in ${SECTIONS:-inference train}; do
        left=$((GPU_BENCH_DEADLINE - $(date +%s)))
        if [ "$left" -le 15 ]; then
            echo "== $section skipped: ${left} s left before the deadline"
            continue
        fi
        echo "== $section (${left} s left, $(( $(date +%s) - START )) s since the start)"
        timeout -k 10 $((left + 15)) "$PY" benchmarks/gpu/bench.py "$section" --out-dir "$OUT" --python-ref "$REF_PY" \
            "${MODE_ARGS[@]}" "${EXTRA_ARGS[@]}" || echo "== $section exited with status $?"
    done

    echo "== report"
    "$PY" benchmarks/gpu/bench.py report --out-dir "$OUT" || echo "== report failed"
    echo "== done in $(( $(date +%s) - START )) s; files in $OUT:"
    ls -la "$OUT"
}

main 2>&1 | tee -a "$OUT/log.txt"
