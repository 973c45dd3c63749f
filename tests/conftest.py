import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Shared numpy-only helpers (signals, model_cases) live beside the tests.
sys.path.insert(0, str(REPO / "tests"))


def pytest_configure(config):
    """One persistent compilation cache for the whole session: the test processes (every xdist worker)
    and the ``jaxdac`` processes the tests start share it, so a program compiled by one test file is
    loaded, not compiled again, by the next (most of the suite's time is XLA compiling). Tests of the
    cache itself set ``JAXDAC_COMPILATION_CACHE`` themselves."""
    cache = Path(os.environ.setdefault("JAXDAC_COMPILATION_CACHE", str(REPO / ".cache" / "xla-tests")))
    if cache.name.lower() in ("off", "none", "0", "false", "no", ""):
        return
    cache.mkdir(parents=True, exist_ok=True)
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache))
    # Only programs that take a while to compile: op-by-op (eager) ones would be thousands of small files.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
