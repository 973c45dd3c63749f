"""Golden discriminator outputs of the ORIGINAL implementation, for the main test suite.

Run under the reference interpreter (see ../shared/reference/README.md):

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_discriminator.py

For each case of tests/discriminator_cases.py it builds ``dac.model.Discriminator(**kwargs)`` with the
seeded weights, runs it on the case's batch (a speech-like and a music-like item) and stores every feature
map as :func:`discriminator_cases.summarise` does (two channels in full, per-channel mean and RMS, the
scale), with the input and the state-dict keys and shapes. It also stores the default discriminator's keys,
shapes and parameter count, and writes ``tests/fixtures/discriminator_tiny.pth`` with the original's own
``Discriminator.save`` (a one-MRD discriminator, about 100 k parameters) and that model's outputs.
Writes ``tests/fixtures/discriminator_tiny.npz``.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "parity")]

import discriminator_cases as cases  # noqa: E402
from reference_discriminator import build_original, describe, run_original  # noqa: E402


def _record(out: dict, case: str, model, audio: np.ndarray) -> None:
    info = describe(model)
    out[f"{case}/input"] = audio
    out[f"{case}/n_parameters"] = info["n_parameters"]
    out[f"{case}/key_shapes"] = info["key_shapes"]
    maps = run_original(model, audio)
    out[f"{case}/n_maps"] = np.asarray([len(m) for m in maps], np.int64)
    for d, fmaps in enumerate(maps):
        for m, fmap in enumerate(fmaps):
            out.update(cases.summarise(cases.fmap_key(case, d, m), fmap))


def main() -> None:
    from dac.model.discriminator import Discriminator

    out: dict[str, np.ndarray] = {}
    for case, kwargs in cases.CASES.items():
        model = build_original(kwargs, cases.seed_of(case))
        audio = cases.case_input(kwargs["sample_rate"], cases.SECONDS, cases.seed_of(case))
        _record(out, case, model, audio)
        print(f"{case}: {int(out[f'{case}/n_parameters']):,} parameters, input {audio.shape}", flush=True)

    model = build_original(cases.PTH_CASE, cases.seed_of("pth"), save_path=cases.PTH_FIXTURE)
    audio = cases.case_input(cases.PTH_CASE["sample_rate"], cases.SECONDS, cases.seed_of("pth"))
    _record(out, "pth", model, audio)
    print(f"pth: wrote {cases.PTH_FIXTURE} ({cases.PTH_FIXTURE.stat().st_size / 1e3:.0f} kB)", flush=True)

    default = describe(Discriminator())
    out["default/n_parameters"] = default["n_parameters"]
    out["default/key_shapes"] = default["key_shapes"]
    print(f"default: {int(default['n_parameters']):,} parameters, {len(json.loads(str(default['key_shapes'])))} keys")

    np.savez_compressed(cases.FIXTURE, **out)
    print(f"wrote {cases.FIXTURE} ({cases.FIXTURE.stat().st_size / 1e3:.0f} kB)")


if __name__ == "__main__":
    main()
