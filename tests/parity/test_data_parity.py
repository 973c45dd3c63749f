"""Live parity of jaxdac.train.data with the original's AudioDataset / ConcatDataset / transforms.

Writes the dataset of reference_data.write_dataset (two groups: folders, a sub-folder, a CSV manifest;
16-48 kHz, mono and stereo, WAV and FLAC; a quiet file whose loud part only some offsets hit, a 0.1 s
file, a silent file), builds the original's datasets as scripts/train.py does (reference_data.py, run
under the reference interpreter) and compares, item by item: the file, the offset (the salient-excerpt
retries drawn from the same RandomState), the excerpt after loading, mono mix, resampling and padding,
every transform parameter, and a collated batch after ``dataset.transform`` against make_transform's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

import reference_data
from jaxdac.train.data import DataConfig, load_data, make_transform

sys.path.insert(0, str(Path(__file__).resolve().parent))

SCRIPT = Path(__file__).resolve().parent / "reference_data.py"
AUDIO_TOLERANCE = 1e-4
TRAIN = list(range(60)) + [999, 1000, 1997, 1998, 1999]

CASES = [
    # name, model rate, split, duration, n_examples, augment_prob, extra, item indices, batch
    ("train_44k", 44100, "train", 0.38, 1000, 0.0, {}, TRAIN, list(range(12))),
    ("val_44k", 44100, "val", 5.0, 4, 1.0, {}, [0, 1, 2, 3], [0, 1, 2, 3]),
    ("train_16k", 16000, "train", 0.38, 1000, 0.0, {}, list(range(20)), list(range(8))),
    ("train_24k_replacement", 24000, "train", 0.38, 1000, 0.0, {"without_replacement": False}, list(range(20)),
     list(range(6))),
    ("train_44k_unshuffled", 44100, "train", 0.38, 1000, 0.0, {"shuffle": False}, list(range(12)), []),
]


@pytest.fixture(scope="module")
def compared(tmp_path_factory, run_reference):
    root = tmp_path_factory.mktemp("data_parity")
    groups = reference_data.write_dataset(root / "data")
    tasks = [{"kind": "items", "name": name, "folders": groups[split], "sample_rate": rate, "duration": duration,
              "n_examples": n, "augment_prob": augment, **extra, "indices": indices, "batch": batch}
             for name, rate, split, duration, n, augment, extra, indices, batch in CASES]
    (root / "tasks.json").write_text(json.dumps(tasks))
    run_reference(SCRIPT, root / "tasks.json", root / "out.npz")
    return groups, np.load(root / "out.npz")


def _ours(groups, case, batch_size=72):
    name, rate, split, duration, n, augment, extra, _, _ = case
    folders = groups[split]
    config = DataConfig(train=folders, val=folders, duration=duration, n_examples=n, augment_prob=augment,
                        batch_size=batch_size, **extra)
    return load_data(config, rate, warn=False), config


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_items_and_transformed_batches_equal_the_originals(compared, case):
    groups, ref = compared
    name, rate, *_, indices, batch = case
    data, config = _ours(groups, case)
    meta = json.loads(str(ref[f"{name}/meta"]))
    assert [m["index"] for m in meta] == indices
    worst, tries = 0.0, []
    for m in meta:
        item = data.train.item(m["index"])
        where = f"{name} item {m['index']}"
        assert item["path"] == m["path"], where  # group balancing, shuffled walk (or the random choice)
        assert item["offset"] == m["offset"], where  # the salient-excerpt draws, retries included
        assert item["transform_args"].keys() == m["args"].keys(), where
        for key, value in m["args"].items():
            assert np.float32(item["transform_args"][key]) == np.float32(value), (where, key)
        theirs = ref[f"{name}/audio/{m['index']}"]
        assert item["audio"].shape == theirs.shape, where
        worst = max(worst, float(np.abs(item["audio"] - theirs).max()))
        tries.append(item["tries"])
    print(f"{name}: {len(meta)} items, excerpt max |diff| {worst:.2e}, tries {sorted(set(tries))}")
    assert worst < AUDIO_TOLERANCE
    if name == "train_44k":  # the rule was exercised: retries that found a loud part, and a silent file's 8
        assert 8 in tries and any(1 < t < 8 for t in tries)
    if batch:
        ours = data.train.batch(batch)
        np.testing.assert_allclose(ours.audio, ref[f"{name}/batch_in"], atol=AUDIO_TOLERANCE, rtol=0)
        out = np.asarray(make_transform(config, rate)(ours.audio, ours.params))
        error = float(np.abs(out - ref[f"{name}/batch_out"]).max())
        print(f"{name}: transformed batch of {len(batch)}, max |diff| {error:.2e}")
        assert error < AUDIO_TOLERANCE


def test_the_pipeline_batches_are_those_items(compared):
    """Batches through Grain (rows of the global batch) are the items the original's sequential sampler
    gives: batch s holds items s*B .. (s+1)*B-1."""
    groups, ref = compared
    data, _ = _ours(groups, CASES[0], batch_size=12)
    meta = {m["index"]: m for m in json.loads(str(ref["train_44k/meta"]))}
    with data.train_batches(0, num_workers=2) as it:
        for step in range(5):
            batch = next(it)
            assert batch.index.tolist() == list(range(12 * step, 12 * step + 12))
            for row, index in enumerate(batch.index):
                assert data.train.files[batch.file[row]] == meta[int(index)]["path"]
                np.testing.assert_allclose(batch.audio[row], ref[f"train_44k/audio/{index}"], atol=AUDIO_TOLERANCE)
