"""The ORIGINAL's data pipeline (audiotools 0.7.2 as scripts/train.py builds it) on audio files, and the
small datasets the data tests, the fixture script and the benchmark write.

Two halves:

* ``write_dataset(root)`` / ``dataset_groups(root)``: numpy + soundfile only, importable in both
  environments. Every file is a pure function of the recipe (tests/signals.py), so the same call writes
  the same samples anywhere.
* the reference side, run as a script under the reference interpreter by tests/parity/test_data_parity.py
  and benchmarks/train_data.py: ``reference_data.py TASK.json OUT.npz``. It builds the original's
  datasets exactly as ``scripts/train.py::build_dataset`` does (one ``AudioLoader(sources=folders)`` and
  one ``AudioDataset(loader, sample_rate, transform=build_transform())`` per group, joined by
  ``ConcatDataset``), with the values of ``conf/base.yml`` passed explicitly instead of through argbind,
  and writes the requested items, a collated batch transformed by ``dataset.transform``, or the
  throughput of a torch ``DataLoader`` over it.

One shim: audiotools' ``util.info`` calls ``torchaudio.info``, which torchaudio 2.11 no longer has (and its
fallback ``torchaudio.backend`` is gone too), so every excerpt fails. It is replaced by the same facts
from ``soundfile.info`` (sample rate and frame count), which is what torchaudio's soundfile backend
returned.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import signals

SAMPLE_RATE = 44100


def _write(path: Path, audio: np.ndarray, rate: int, subtype: str | None = None) -> None:
    """``audio [T]`` or ``[C, T]`` float -> file (PCM_16 unless ``subtype``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    audio = np.asarray(audio, np.float32)
    data = audio.T if audio.ndim == 2 else audio
    sf.write(str(path), np.clip(data, -1, 1), rate, subtype=subtype or "PCM_16")


def write_dataset(root: str | Path) -> dict[str, dict[str, list[str]]]:
    """A small clean dataset of two training groups and one validation group, in ``root``.

    Rates 16-48 kHz, mono and stereo, WAV and FLAC, a folder tree, a CSV manifest (absolute paths), a
    quiet file whose loud part the salient-excerpt retries must find, a 0.1 s file (padded) and a silent
    file (kept, as the original keeps it). Returns ``{"train": groups, "val": groups}``.
    """
    root = Path(root)
    speech, music, manifest, val = root / "speech", root / "music", root / "manifest", root / "val"
    _write(speech / "a.wav", signals.speech_like(44100, 2.0, 1), 44100)
    _write(speech / "b.flac", np.stack([signals.speech_like(48000, 1.5, 2), 0.5 * signals.music_like(48000, 1.5, 3)]),
           48000)
    _write(speech / "deep" / "c.wav", signals.speech_like(16000, 3.0, 4), 16000)
    quiet = signals.noise(44100, 3.0, 5, 0.0005)
    quiet[int(2.4 * 44100) : int(2.7 * 44100)] += signals.speech_like(44100, 0.3, 6)[: int(2.7 * 44100) - int(2.4 * 44100)]
    _write(speech / "quiet.wav", quiet, 44100)
    _write(speech / "short.wav", signals.speech_like(44100, 0.1, 7), 44100)
    _write(music / "m1.wav", np.stack([signals.music_like(44100, 2.5, 8), signals.music_like(44100, 2.5, 9)]), 44100)
    _write(music / "m2.flac", signals.music_like(22050, 1.2, 10), 22050)
    _write(music / "silent.wav", np.zeros(44100, np.float32), 44100)
    _write(manifest / "files" / "x.wav", signals.mixture(24000, 2.0, 11), 24000)
    _write(manifest / "files" / "y.wav", signals.music_like(32000, 0.9, 12), 32000, "FLOAT")
    with open(manifest / "list.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "note"])
        for name in ("y.wav", "x.wav"):
            writer.writerow([str((manifest / "files" / name).resolve()), name])
    _write(val / "v1.wav", signals.speech_like(44100, 6.0, 13), 44100)
    _write(val / "v2.wav", signals.music_like(44100, 3.0, 14), 44100)
    return dataset_groups(root)


def dataset_groups(root: str | Path) -> dict[str, dict[str, list[str]]]:
    root = Path(root)
    return {"train": {"speech": [str(root / "speech")], "music": [str(root / "music"), str(root / "manifest" / "list.csv")]},
            "val": {"speech_hq": [str(root / "val")]}}


def write_bulk_dataset(root: str | Path, n_files: int = 24, seconds: float = 6.0) -> dict[str, list[str]]:
    """A larger dataset for throughput: ``n_files`` per group of speech and music, 44.1/48 kHz, mono/stereo."""
    root = Path(root)
    for i in range(n_files):
        rate = 48000 if i % 3 == 0 else 44100
        x = signals.speech_like(rate, seconds, 100 + i)
        _write(root / "speech" / f"s{i:03d}.wav", x if i % 2 else np.stack([x, 0.7 * x]), rate)
        _write(root / "music" / f"m{i:03d}.flac", signals.music_like(rate, seconds, 200 + i), rate)
    return {"speech": [str(root / "speech")], "music": [str(root / "music")]}


# ----------------------------------------------------------------------------------------------------
# Reference side (reference interpreter only)


def _patch_info():
    from audiotools.core import util

    def info(audio_path):
        facts = sf.info(str(audio_path))
        return util.Info(sample_rate=facts.samplerate, num_frames=facts.frames)

    util.info = info


def build_original(folders: dict, sample_rate: int, *, duration: float, n_examples: int, augment_prob: float,
                   loudness_cutoff: float = -40, without_replacement: bool = True, shuffle: bool = True):
    """``scripts/train.py::build_dataset`` with base.yml's values (VolumeNorm.db const -16, postprocess
    VolumeNorm, RescaleAudio, ShiftPhase; preprocess and augment Identity)."""
    _patch_info()
    from audiotools.data import transforms as tfm
    from audiotools.data.datasets import AudioDataset, AudioLoader, ConcatDataset

    def build_transform():
        preprocess = tfm.Compose(tfm.Identity(), name="preprocess")
        augment = tfm.Compose(tfm.Identity(), name="augment", prob=augment_prob)
        postprocess = tfm.Compose(tfm.VolumeNorm(db=["const", -16]), tfm.RescaleAudio(), tfm.ShiftPhase(),
                                  name="postprocess")
        return tfm.Compose(preprocess, augment, postprocess)

    datasets = []
    for _, sources in folders.items():
        loader = AudioLoader(sources=sources, shuffle=shuffle)
        transform = build_transform()
        datasets.append(AudioDataset(loader, sample_rate, n_examples=n_examples, duration=duration,
                                     loudness_cutoff=loudness_cutoff, transform=transform,
                                     without_replacement=without_replacement))
    dataset = ConcatDataset(datasets)
    dataset.transform = transform
    return dataset


def _flat_args(args: dict) -> dict[str, float]:
    from flatten_dict import flatten

    return {"/".join(k): float(v.item()) if hasattr(v, "item") else float(v) for k, v in flatten(args).items()}


def run_items(task: dict, out: dict) -> None:
    """Items ``task["indices"]`` and the transformed batch of ``task["batch"]`` of one dataset."""
    import torch

    dataset = build_original(task["folders"], task["sample_rate"], duration=task["duration"],
                             n_examples=task["n_examples"], augment_prob=task["augment_prob"],
                             without_replacement=task.get("without_replacement", True),
                             shuffle=task.get("shuffle", True))
    prefix = task["name"]
    meta = []
    for i in task["indices"]:
        item = dataset[i]
        out[f"{prefix}/audio/{i}"] = item["signal"].audio_data[0].numpy()
        meta.append({"index": i, "path": item["path"], "offset": float(item["signal"].metadata["offset"]),
                     "args": _flat_args(item["transform_args"])})
    if task.get("batch"):
        batch = dataset.collate([dataset[i] for i in task["batch"]])
        with torch.no_grad():
            signal = dataset.transform(batch["signal"].clone(), **batch["transform_args"])
        out[f"{prefix}/batch_in"] = batch["signal"].audio_data.numpy()
        out[f"{prefix}/batch_out"] = signal.audio_data.numpy()
    out[f"{prefix}/meta"] = np.array(json.dumps(meta))


def run_throughput(task: dict, out: dict) -> None:
    """Examples per second of a torch DataLoader over the original's dataset, per num_workers."""
    import torch

    torch.set_num_threads(1)
    dataset = build_original(task["folders"], task["sample_rate"], duration=task["duration"],
                             n_examples=task["n_examples"], augment_prob=0.0)
    results = []
    for workers in task["workers"]:
        loader = torch.utils.data.DataLoader(dataset, batch_size=task["batch_size"], num_workers=workers,
                                             collate_fn=dataset.collate, shuffle=False)
        it = iter(loader)
        start = time.perf_counter()
        next(it)  # startup (worker processes) and the first batch
        first = time.perf_counter() - start
        for _ in range(workers - 1):  # every worker's first batch: start-up, not throughput
            next(it)
        start = time.perf_counter()
        for _ in range(task["batches"]):
            next(it)
        elapsed = time.perf_counter() - start
        del it
        results.append({"workers": workers, "first_s": first,
                        "examples_per_s": task["batches"] * task["batch_size"] / elapsed})
    out["throughput"] = np.array(json.dumps(results))


def main() -> None:
    import warnings

    warnings.filterwarnings("ignore")
    import torch

    torch.set_num_threads(2)
    tasks = json.loads(Path(sys.argv[1]).read_text())
    out: dict[str, np.ndarray] = {}
    for task in tasks:
        {"items": run_items, "throughput": run_throughput}[task["kind"]](task, out)
    np.savez(sys.argv[2], **out)


if __name__ == "__main__":
    main()
