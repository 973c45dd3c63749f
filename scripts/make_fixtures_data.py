"""Golden items of the ORIGINAL's data pipeline, for the main test suite (tests/train/test_data.py).

Run under the reference interpreter (built by scripts/install_reference.sh):

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_data.py

It writes the dataset of ``tests/parity/reference_data.py::write_dataset`` into a temporary folder
(the tests write the same files again: numpy signals in lossless formats), builds the original's
datasets as ``scripts/train.py`` does and stores, in ``tests/fixtures/data_items.npz``:

* ``<task>/meta``: JSON list of ``{index, path (relative to the dataset root), offset, args}`` with the
  transform parameters in audiotools' flattened keys, for every item of the task;
* ``train/audio/<i>`` for items 0-9 (every file and rate of the dataset): the excerpt ``[1, T]`` after
  loading, mono mix, resampling and padding; ``train/batch_out``: items 0-3 collated and transformed by
  ``dataset.transform`` (audio is kept to these few items so that the file stays under 1 MB; the
  parity suite compares many more, and 5 s validation excerpts, live);
* ``tasks``: the task list (JSON), so the test rebuilds the same configs.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "parity")]

import numpy as np

import reference_data as ref

OUT = ROOT / "tests" / "fixtures" / "data_items.npz"


def tasks(groups: dict) -> list[dict]:
    """The cases: base.yml training items, validation items, and the original's draw with replacement."""
    common = {"kind": "items", "sample_rate": ref.SAMPLE_RATE, "n_examples": 1000}
    return [
        {**common, "name": "train", "folders": groups["train"], "duration": 0.38, "augment_prob": 0.0,
         "indices": list(range(24)) + [997, 1998, 1999], "batch": list(range(4))},
        {**common, "name": "val", "folders": groups["val"], "duration": 1.0, "augment_prob": 1.0,
         "n_examples": 4, "indices": [0, 1, 2, 3], "batch": []},
        {**common, "name": "replacement", "folders": groups["train"], "duration": 0.38, "augment_prob": 0.0,
         "without_replacement": False, "indices": list(range(8)), "batch": []},
        {**common, "name": "unshuffled", "folders": groups["train"], "duration": 0.38, "augment_prob": 0.0,
         "shuffle": False, "indices": list(range(6)), "batch": []},
    ]


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve() / "data"
        groups = ref.write_dataset(root)
        todo = tasks(groups)
        out: dict[str, np.ndarray] = {}
        for task in todo:
            ref.run_items(task, out)
            meta = json.loads(str(out[f"{task['name']}/meta"]))
            for m in meta:
                m["path"] = str(Path(m["path"]).resolve().relative_to(root))
            out[f"{task['name']}/meta"] = np.array(json.dumps(meta))
        kept = {f"train/audio/{i}" for i in range(10)} | {"train/batch_out"}
        out = {k: v for k, v in out.items() if k.endswith("/meta") or k in kept}
        for task in todo:  # stored relative to the root; the test substitutes its own
            task["folders"] = {g: [str(Path(s).relative_to(root)) for s in v] for g, v in task["folders"].items()}
        out["tasks"] = np.array(json.dumps(todo))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, **out)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
