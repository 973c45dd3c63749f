"""Training and validation data, item for item the original's, batched with Grain.

The original (``scripts/train.py`` on audiotools 0.7.2) builds, per named group of folders, an
``AudioLoader`` and an ``AudioDataset``, joins the groups with a ``ConcatDataset`` and walks it in order
(``SequentialSampler``); the batch transforms run on the accelerator. This module computes the same
items and the same transform parameters from the same random draws:

* **Groups are balanced**: item ``i`` comes from group ``i % K`` (``K`` groups, in the order given), at
  index ``idx = i // K`` of that group (``ConcatDataset``). Each group has ``n_examples`` items, as each
  of the original's ``AudioDataset`` s has, so the sequence repeats after ``K * n_examples`` items.
* **Within a group** (``AudioLoader``) each source's files are sorted by path, the sources' lists are
  concatenated, and that list of files is shuffled once by ``RandomState(0).shuffle``; with
  ``without_replacement`` item ``idx`` takes file ``idx % n_files`` of it, else a source uniformly and a
  file of it uniformly, drawn from the item's random state.
* **Each item draws from** ``np.random.RandomState(idx)``, in the original's order: (the file,) then the
  salient excerpt: an offset uniform in ``[0, max(file duration - duration, 0)]`` seconds, read as
  librosa reads it (``seek(int(offset * rate))``, ``int(duration * rate)`` frames), retried while the
  excerpt's loudness (BS.1770, as ``AudioSignal.loudness``, over all its channels at the file's rate) is
  at or below ``loudness_cutoff``, at most ``num_tries`` times, the last try kept; then the mono mix
  (channel mean), resampling to the model's rate (``julius.resample_frac``, as
  :func:`jaxdac.dsp.resample`) and zero padding (or cropping) to ``int(duration * sample_rate)``
  samples; then the transform parameters (``Compose.instantiate``: every transform's own draws, then a
  ``state.rand() <= prob`` for its mask, depth first, as :class:`audiotools.data.transforms.Compose`).
* **The transforms** (``conf/base.yml``: ``VolumeNorm`` to -16 LUFS, ``RescaleAudio``, ``ShiftPhase``
  by a uniform angle) run as one jitted JAX function on the batch (:func:`make_transform`), with the
  per-item parameters from the data workers.

So item ``i`` is a pure function of (config, files, seed, ``i``): batches do not depend on the number of
worker processes, the number of hosts, or on where a run was interrupted. Global batch ``s`` holds items
``s * batch_size .. (s + 1) * batch_size - 1``, as the original's sequential sampler gives; process ``p``
of ``P`` produces rows ``[p * B / P, (p + 1) * B / P)`` of it. The iterator's state is the next step.

Seeds: ``seed=0`` is the original exactly (it shuffles files with ``RandomState(0)`` and draws items
from ``RandomState(idx)`` whatever the run's seed). Another seed shuffles files with
``RandomState(seed)`` and draws item ``idx`` from ``RandomState([seed, idx])``. The validation set never
depends on the seed.

Where this differs from the original, on purpose:

* files that cannot be used are found before training and skipped, each counted with its reason, with
  one warning line summarising (the original fails on them mid-run): unreadable or not audio, empty
  (0 bytes or 0 samples), truncated (the header promises more samples than the data holds), shorter
  than ``min_duration`` (default 0.05 s; the original pads any file, so 0 restores that), more than five
  channels (BS.1770 weights stop at five; the original fails). Files whose name is not an audio suffix
  are ignored in folder scans (counted, no warning). Silent files are kept, as the original keeps them:
  their excerpts stay silent through the transforms, and the batch flags them (``salient`` False, as for
  any excerpt that stayed at or below the cutoff after every try). Telling silence apart would mean
  reading every file in full before training.
* a file that fails while an item reads it (changed on disk after the scan) gives a silent item
  (``ok`` False) and one warning naming it, instead of stopping the run;
* folders are scanned for every suffix :mod:`jaxdac.io.audio` reads (any case), not only
  ``.wav .flac .mp3 .mp4``; relative paths in a CSV manifest are resolved against the CSV's folder (the
  original resolves them against the working directory);
* an excerpt that resamples to more than ``int(duration * sample_rate)`` samples is cropped (the
  original keeps it and then fails to collate it);
* the last, short batch of a pass over the ``K * n_examples`` items is not produced: the sequence
  continues with item 0 (the original's infinite loader restarts there after that short batch).
* VolumeNorm measures loudness exactly (the IIR K-weighting) on every device; the original on a GPU
  switches to a 512-tap FIR approximation, about 0.01 LU off.

Validation (``val`` groups, or, with ``val=None``, a fixed share of each training group's files that is
never trained on): ``val_examples`` items per group of ``val_duration`` seconds, drawn the same way with
seed 0, in batches of ``val_batch_size`` whose last one is padded (``Batch.valid`` False on padding rows).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import json
import math
import os
import warnings
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import soundfile as sf

from jaxdac.io.audio import AudioFileError, audio_info, audio_suffixes

__all__ = [
    "TRANSFORMS",
    "Batch",
    "BatchIterator",
    "Data",
    "DataConfig",
    "DataError",
    "DataReport",
    "DataWarning",
    "SkippedFile",
    "Split",
    "TransformParams",
    "apply_transforms",
    "load_data",
    "loudness_np",
    "make_transform",
    "resample_np",
    "shift_phase_window",
]

TRANSFORMS = ("Identity", "VolumeNorm", "RescaleAudio", "ShiftPhase")
"""Transform names the configs may list (audiotools class names); the base.yml ones and Identity."""
_DISTRIBUTIONS = ("const", "uniform", "normal")  # audiotools' sample_from_dist kinds supported here
_MAX_CHANNELS = 5  # BS.1770 channel weights L, R, C, Ls, Rs
_SEED_LIMIT = 2**32  # numpy RandomState seeds (and seed-array words) are 32-bit
_HORIZON = 2**40  # steps in a Grain pipeline: endless in practice (the items repeat with period K * n_examples)


class DataError(ValueError):
    """The data cannot be used as configured: a bad config value, or a source with no usable audio."""


class DataWarning(UserWarning):
    """Files were skipped (one warning summarising them), or a file failed while being read."""


# ----------------------------------------------------------------------------------------------------
# Config


class _Groups(Mapping):
    """An ordered, immutable, hashable ``{group name: (source, ...)}`` (what ``train``/``val`` hold)."""

    __slots__ = ("_items",)

    def __init__(self, items: tuple[tuple[str, tuple[str, ...]], ...]):
        self._items = items

    def __getitem__(self, key):
        for name, sources in self._items:
            if name == key:
                return sources
        raise KeyError(key)

    def __iter__(self):
        return (name for name, _ in self._items)

    def __len__(self):
        return len(self._items)

    def __hash__(self):
        return hash(self._items)

    def __eq__(self, other):
        return isinstance(other, Mapping) and list(self.items()) == [(k, _tuple_of_str(v)) for k, v in other.items()]

    def __repr__(self):
        return repr(dict(self._items))


def _tuple_of_str(value) -> tuple:
    if isinstance(value, (str, os.PathLike)):
        return (os.fspath(value),)
    try:
        return tuple(os.fspath(v) if isinstance(v, os.PathLike) else v for v in value)
    except TypeError:
        return (value,)


def _groups(name: str, value) -> _Groups | None:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)) or (isinstance(value, Sequence) and not isinstance(value, Mapping)):
        value = {"data": value}  # a bare folder/CSV (or list of them) is one group
    if not isinstance(value, Mapping):
        raise DataError(f"data.{name} must map group names to lists of folders or CSV files, got {value!r}")
    items = []
    for group, sources in value.items():
        if not isinstance(group, str) or not group:
            raise DataError(f"data.{name}: group names must be non-empty strings, got {group!r}")
        sources = _tuple_of_str(sources)
        if not sources or not all(isinstance(s, str) and s for s in sources):
            raise DataError(f"data.{name}.{group} must be a non-empty list of folders or CSV files, got {sources!r}")
        items.append((group, sources))
    return _Groups(tuple(items))


def _distribution(name: str, value) -> tuple:
    """An audiotools distribution tuple (``("const", x)``, ``("uniform", lo, hi)``, ``("normal", mu, sd)``)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("const", float(value))
    value = _tuple_of_str(value)
    if not value or value[0] not in _DISTRIBUTIONS:
        raise DataError(f"data.{name} must be a number or [kind, ...] with kind in {_DISTRIBUTIONS}, got {value!r}")
    args = value[1:]
    wanted = 1 if value[0] == "const" else 2
    if len(args) != wanted or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in args):
        raise DataError(f"data.{name}: {value[0]} takes {wanted} number(s), got {value!r}")
    return (value[0], *(float(a) for a in args))


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """What the data pipeline reads and how, defaults from the original's ``conf/base.yml``.

    ``train`` / ``val``: ``{group name: (folder or CSV manifest, ...)}``, the original's
    ``train/build_dataset.folders`` / ``val/build_dataset.folders``; a bare path (or list) is one group
    called ``"data"``. ``val=None`` holds out ``holdout_fraction`` of each training group's usable
    files (at least one, from groups with two or more), chosen by a hash of their paths, for validation.

    ``n_examples`` and ``val_examples`` count items per group (the original's
    ``AudioDataset.n_examples``). ``batch_size`` and ``val_batch_size`` are global, over all processes
    and devices. ``num_workers`` worker processes (0: in the calling process) each build whole batches
    with ``num_threads`` threads, holding up to ``prefetch`` finished batches each.

    Transforms: ``preprocess``, ``augment`` (applied with probability ``augment_prob``, ``val_augment_prob``
    for validation) and ``postprocess`` are lists of names in :data:`TRANSFORMS`, composed as the
    original's ``build_transform``; ``volume_norm_db`` (``VolumeNorm.db``), ``shift_phase``
    (``ShiftPhase.shift``) are distributions as audiotools writes them, ``rescale_max`` is ``RescaleAudio.val``.
    """

    train: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    val: Mapping[str, tuple[str, ...]] | None = None
    duration: float = 0.38
    val_duration: float = 5.0
    n_examples: int = 10_000_000
    val_examples: int = 250
    batch_size: int = 72
    val_batch_size: int = 100
    loudness_cutoff: float | None = -40.0
    num_tries: int = 8
    shuffle: bool = True
    without_replacement: bool = True
    seed: int = 0
    num_workers: int = 0
    num_threads: int = 1
    prefetch: int = 2
    preprocess: tuple[str, ...] = ("Identity",)
    augment: tuple[str, ...] = ("Identity",)
    augment_prob: float = 0.0
    val_augment_prob: float = 1.0
    postprocess: tuple[str, ...] = ("VolumeNorm", "RescaleAudio", "ShiftPhase")
    volume_norm_db: tuple = ("const", -16.0)
    shift_phase: tuple = ("uniform", -math.pi, math.pi)
    rescale_max: float = 1.0
    holdout_fraction: float = 0.05
    min_duration: float = 0.05

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("train", _groups("train", self.train) or _Groups(()))
        set_("val", _groups("val", self.val))
        for name in ("preprocess", "augment", "postprocess"):
            names = _tuple_of_str(getattr(self, name))
            unknown = [n for n in names if n not in TRANSFORMS]
            if unknown:
                raise DataError(f"data.{name}: unsupported transform(s) {unknown}; supported: {', '.join(TRANSFORMS)}")
            set_(name, names)
        set_("volume_norm_db", _distribution("volume_norm_db", self.volume_norm_db))
        set_("shift_phase", _distribution("shift_phase", self.shift_phase))
        problems = []

        def number(name, low=None, high=None, *, integer=False, low_open=False, high_open=True, none_ok=False):
            value = getattr(self, name)
            if value is None and none_ok:
                return
            kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
            if ok and low is not None:
                ok = value > low if low_open else value >= low
            if ok and high is not None:
                ok = value < high if high_open else value <= high
            if ok:
                set_(name, int(value) if integer else float(value))
                return
            bounds = [f"{'>' if low_open else '>='} {low}"] if low is not None else []
            bounds += [f"{'<' if high_open else '<='} {high}"] if high is not None else []
            problems.append(f"data.{name} must be {'an integer' if integer else 'a number'}"
                            f"{' ' + ' and '.join(bounds) if bounds else ''}, got {value!r}")

        number("duration", 0, low_open=True)
        number("val_duration", 0, low_open=True)
        number("n_examples", 1, _SEED_LIMIT, integer=True)
        number("val_examples", 1, _SEED_LIMIT, integer=True)
        number("batch_size", 1, integer=True)
        number("val_batch_size", 1, integer=True)
        number("loudness_cutoff", none_ok=True)
        number("num_tries", 1, integer=True)
        number("seed", 0, _SEED_LIMIT, integer=True)
        number("num_workers", 0, integer=True)
        number("num_threads", 0, integer=True)
        number("prefetch", 1, integer=True)
        number("augment_prob", 0, 1, high_open=False)
        number("val_augment_prob", 0, 1, high_open=False)
        number("rescale_max", 0, low_open=True)
        number("holdout_fraction", 0, 1, low_open=True)
        number("min_duration", 0)
        for name in ("shuffle", "without_replacement"):
            if not isinstance(getattr(self, name), bool):
                problems.append(f"data.{name} must be true or false, got {getattr(self, name)!r}")
        if problems:
            raise DataError("invalid data config: " + "; ".join(problems))

    def replace(self, **changes) -> "DataConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists, dicts, numbers), as written to YAML; :meth:`from_dict` reads it back."""
        out = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, _Groups):
                value = {name: list(sources) for name, sources in value.items()}
            elif isinstance(value, tuple):
                value = list(value)
            out[field.name] = value
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "DataConfig":
        """A config from plain values (YAML); unknown keys are an error naming them."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(values) - set(names))
        if unknown:
            raise DataError(f"unknown data config key(s) {unknown}; known: {', '.join(names)}")
        return cls(**dict(values))


# ----------------------------------------------------------------------------------------------------
# Transforms: audiotools' Compose tree, its parameter draws, and the batch function in JAX


@dataclasses.dataclass(frozen=True)
class _Node:
    """One audiotools transform: a Compose (``children``) or a leaf, named as audiotools names it
    (``Compose`` renames its i-th child ``f"{i}.{name}"``)."""

    kind: str  # "Compose" or one of TRANSFORMS
    name: str
    prob: float = 1.0
    children: tuple["_Node", ...] = ()
    dist: tuple | None = None  # the leaf's parameter distribution


def _transform_tree(config: DataConfig, augment_prob: float) -> _Node:
    """The original's ``build_transform``: Compose(Compose(pre), Compose(aug, prob), Compose(post))."""

    def leaf(kind: str, i: int) -> _Node:
        dist = {"VolumeNorm": config.volume_norm_db, "ShiftPhase": config.shift_phase}.get(kind)
        return _Node(kind, f"{i}.{kind}", dist=dist)

    def compose(i: int, name: str, kinds: tuple[str, ...], prob: float) -> _Node:
        return _Node("Compose", f"{i}.{name}", prob, tuple(leaf(k, j) for j, k in enumerate(kinds)))

    children = (compose(0, "preprocess", config.preprocess, 1.0), compose(1, "augment", config.augment, augment_prob),
                compose(2, "postprocess", config.postprocess, 1.0))
    return _Node("Compose", "Compose", 1.0, children)


def _leaves(node: _Node) -> list[_Node]:
    return [leaf for child in node.children for leaf in _leaves(child)] if node.kind == "Compose" else [node]


def _sample(dist: tuple, state: np.random.RandomState) -> float:
    """audiotools' ``util.sample_from_dist``: const draws nothing, the others call the RandomState method."""
    if dist[0] == "const":
        return dist[1]
    return float(getattr(state, dist[0])(*dist[1:]))


def _draw(node: _Node, state: np.random.RandomState, path: str, out: dict) -> None:
    """``BaseTransform.instantiate`` depth first: children (or the leaf's parameter), then the mask.
    ``out`` gets the original's flattened keys, e.g. ``Compose/2.postprocess/2.ShiftPhase/shift``."""
    path = f"{path}/{node.name}" if path else node.name
    if node.kind == "Compose":
        for child in node.children:
            _draw(child, state, path, out)
    elif node.dist is not None:
        out[f"{path}/{'db' if node.kind == 'VolumeNorm' else 'shift'}"] = _sample(node.dist, state)
    out[f"{path}/mask"] = bool(state.rand() <= node.prob)


class TransformParams(NamedTuple):
    """Per-item parameters of the transform leaves, in order (a pytree: device_put it with the audio).

    ``mask [B, L]``: the leaf applies (its own mask and every enclosing Compose's); ``reached [B, L]``:
    every enclosing Compose's mask (a spectral leaf resynthesises reached items, shifted or not, as
    audiotools does); ``value [B, L]``: the leaf's parameter (VolumeNorm dB, ShiftPhase radians; else 0).
    """

    mask: Any
    reached: Any
    value: Any


def _pack(tree: _Node, raw: dict) -> TransformParams:
    """The flat audiotools dict of one item -> its ``[L]`` arrays."""
    masks, reached, values = [], [], []

    def walk(node: _Node, path: str, up: bool):
        path = f"{path}/{node.name}" if path else node.name
        own = raw[f"{path}/mask"]
        if node.kind == "Compose":
            for child in node.children:
                walk(child, path, up and own)
            return
        masks.append(up and own)
        reached.append(up)
        key = f"{path}/{'db' if node.kind == 'VolumeNorm' else 'shift'}"
        values.append(raw.get(key, 0.0))

    walk(tree, "", True)
    return TransformParams(np.array(masks, bool), np.array(reached, bool), np.array(values, np.float32))


def shift_phase_window(sample_rate: int) -> int:
    """audiotools' default STFT window for ``sample_rate``: 32 ms of samples rounded up to a power of two,
    computed with its float expression (2048 at 44.1 kHz, 1024 at 24 kHz, 512 at 16 kHz)."""
    return int(2 ** (np.ceil(np.log2(0.032 * sample_rate))))


def apply_transforms(audio, params: TransformParams, *, kinds: tuple[str, ...], sample_rate: int,
                     rescale_max: float = 1.0):
    """The leaves ``kinds`` applied in order to ``audio [B, 1, T]`` (pure JAX; see :func:`make_transform`).

    * VolumeNorm: gain ``exp((db - loudness) * ln(10) / 20)`` (``AudioSignal.normalize``), the loudness
      of the audio as it is at that point (:func:`jaxdac.dsp.loudness`);
    * RescaleAudio: divide by the peak where it exceeds ``rescale_max`` (``ensure_max_of_audio``);
    * ShiftPhase: STFT (hann, audiotools' default window for the rate, hop window / 4), phase plus the
      angle, magnitude kept, inverse STFT to the same length (``AudioSignal.shift_phase``).
    """
    import jax.numpy as jnp

    from jaxdac.dsp import istft, loudness, stft

    x = jnp.asarray(audio, jnp.float32)
    length = x.shape[-1]
    for leaf, kind in enumerate(kinds):
        applied = params.mask[:, leaf][:, None, None]
        value = jnp.asarray(params.value[:, leaf], jnp.float32)
        if kind == "VolumeNorm":
            gain = jnp.exp((value - loudness(x, sample_rate)) * np.float32(np.log(10) / 20))
            x = jnp.where(applied, x * gain[:, None, None], x)
        elif kind == "RescaleAudio":
            peak = jnp.max(jnp.abs(x), axis=-1, keepdims=True)
            over = peak > rescale_max
            x = jnp.where(applied & over, x * (rescale_max / jnp.where(over, peak, 1.0)), x)
        elif kind == "ShiftPhase":
            window = shift_phase_window(sample_rate)
            spec = stft(x, window, window // 4, "hann")  # [B, 1, bins, frames]
            shift = jnp.where(params.mask[:, leaf], value, 0.0)[:, None, None, None]
            spec = jnp.abs(spec) * jnp.exp(1j * (jnp.angle(spec) + shift))
            y = istft(spec, window, window // 4, "hann", length=length)
            x = jnp.where(params.reached[:, leaf][:, None, None], y, x)
    return x


def make_transform(config: DataConfig, sample_rate: int) -> Callable:
    """The jitted batch transform ``transform(audio [B, 1, T], params: TransformParams) -> [B, 1, T]``.

    Equal to the original's ``train_data.transform(signal, **transform_args)`` on the same parameters;
    the same function serves validation batches (their masks carry the validation probabilities). It can
    be called inside another jitted function and keeps the shardings of its inputs.
    """
    import jax

    kinds = tuple(leaf.kind for leaf in _leaves(_transform_tree(config, 1.0)))
    return jax.jit(functools.partial(apply_transforms, kinds=kinds, sample_rate=int(sample_rate),
                                     rescale_max=float(config.rescale_max)))


# ----------------------------------------------------------------------------------------------------
# DSP on the host, in numpy: what the workers run (they never start JAX)


def loudness_np(audio: np.ndarray, sample_rate: int, block_size: float = 0.4) -> float:
    """Integrated loudness in LUFS of ``audio [C, T]`` (C <= 5): :func:`jaxdac.dsp.loudness` in numpy.

    Same steps as ``AudioSignal.loudness``: zero-padded to 0.5 s, K-weighted by pyloudnorm's two biquads
    with float32-rounded coefficients (an exact IIR filter, scipy's ``lfilter``, in float64), blocks of
    ``int(0.4 * rate)`` samples every ``int(0.1 * rate)``, the last zero-filled, absolute gate at -70
    LUFS, relative gate 10 LU below, floor -70 LUFS.
    """
    import scipy.signal

    from jaxdac.dsp.loudness import _CHANNEL_WEIGHTS, k_weighting_biquads

    x = np.asarray(audio, np.float64)
    channels, length = x.shape
    if length / sample_rate < 0.5:
        pad = int((0.5 - length / sample_rate) * sample_rate)
        x = np.pad(x, ((0, 0), (0, pad)))
        length += pad
    for b, a in k_weighting_biquads(sample_rate):
        x = scipy.signal.lfilter(b, a, x, axis=-1)
    block, hop = int(block_size * sample_rate), int(block_size * sample_rate * 0.25)
    n_blocks = math.ceil((max(length, block) - block) / hop) + 1
    covered = (n_blocks - 1) * hop + block
    power = np.zeros((channels, covered + 1))
    power[:, 1 : length + 1] = x**2
    cumulative = np.cumsum(power, axis=1)
    starts = np.arange(n_blocks) * hop
    z = (cumulative[:, starts + block] - cumulative[:, starts]) / (block_size * sample_rate)  # [C, n]
    weights = np.asarray(_CHANNEL_WEIGHTS[:channels])[:, None]

    def lufs(power_per_channel):
        with np.errstate(divide="ignore"):
            return -0.691 + 10.0 * np.log10((weights * power_per_channel).sum(0))

    def gated_mean(keep):
        return z[:, keep].mean(axis=1, keepdims=True) if keep.any() else np.zeros((channels, 1))

    block_loudness = lufs(z)
    above = block_loudness > -70.0
    relative = lufs(gated_mean(above))[0] - 10.0
    kept = above & (block_loudness > relative)
    return float(max(lufs(np.maximum(gated_mean(kept), 0.0))[0], -70.0))


def resample_np(audio: np.ndarray, old_sr: int, new_sr: int) -> np.ndarray:
    """:func:`jaxdac.dsp.resample` (``julius.resample_frac``, 24 zero crossings, rolloff 0.945) of
    ``audio [C, T]`` float32, in numpy: the same polyphase filter bank, applied with matmuls."""
    from jaxdac.dsp.resample import _polyphase_bank, resampled_length

    if old_sr == new_sr:
        return audio
    gcd = math.gcd(old_sr, new_sr)
    old, new = old_sr // gcd, new_sr // gcd
    bank, width = _polyphase_bank(old, new, 24, 0.945, np.dtype(np.float32))  # [n_rows, old, new]
    n_rows = bank.shape[0]
    channels, n_in = audio.shape
    n_frames = n_in // old + 1
    total = (n_frames + n_rows - 1) * old
    # Edge samples repeated, as julius pads; see jaxdac.dsp.resample for why the right side may run long.
    padded = np.concatenate([np.repeat(audio[:, :1], width, 1), audio,
                             np.repeat(audio[:, -1:], total - n_in - width, 1)], axis=1)
    rows = padded.reshape(channels, n_frames + n_rows - 1, old)
    frames = sum(rows[:, r : r + n_frames] @ bank[r] for r in range(n_rows))  # [C, frames, new]
    return np.ascontiguousarray(frames.reshape(channels, -1)[:, : resampled_length(n_in, old_sr, new_sr)])


# ----------------------------------------------------------------------------------------------------
# Sources: scanning, checking, skipping


@dataclasses.dataclass(frozen=True)
class SkippedFile:
    """A file left out, with its category (``reason``) and the details."""

    split: str
    group: str
    path: str
    reason: str  # "unreadable", "empty", "truncated", "too short", "too many channels"
    detail: str


@dataclasses.dataclass(frozen=True)
class DataReport:
    """What the scan found: files used per split, files skipped (each with its reason), names ignored."""

    used: Mapping[str, int]
    skipped: tuple[SkippedFile, ...]
    ignored: int  # files in scanned folders whose suffix is not an audio format's
    held_out: int  # training files moved to validation (val=None)

    def counts(self) -> dict[str, int]:
        """Skipped files per reason."""
        return dict(Counter(s.reason for s in self.skipped))

    def summary(self) -> str:
        """One line: files used, skipped by reason (with the first one's details), ignored."""
        used = ", ".join(f"{n} {split}" for split, n in self.used.items())
        line = f"data: {used} files"
        if self.held_out:
            line += f" ({self.held_out} training file(s) held out for validation)"
        if self.skipped:
            reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.counts().items()))
            example = self.skipped[0].detail.split(" (this libsndfile")[0]  # without the list of formats
            line += (f"; skipped {len(self.skipped)} ({reasons}), e.g. {example}"
                     f"{'' if len(self.skipped) == 1 else ' (all in DataReport.skipped)'}")
        if self.ignored:
            line += f"; ignored {self.ignored} non-audio file name(s)"
        return line

    def lines(self) -> list[str]:
        """One line per skipped file, for a log."""
        return [f"{s.split}/{s.group}: {s.reason}: {s.detail}" for s in self.skipped]


class _Probe(NamedTuple):
    path: str
    sample_rate: int
    frames: int
    channels: int


def _candidates(source: str, suffixes: frozenset[str]) -> tuple[list[tuple[str, str]], int]:
    """``([(path, path relative to the source), ...] sorted by path, ignored count)`` of a folder, a
    CSV manifest or a single audio file. Raises :class:`DataError` if the source does not exist."""
    path = Path(source).expanduser()
    if not path.exists():
        raise DataError(f"data source {source} does not exist")
    if path.is_file() and path.suffix.lower() == ".csv":
        try:
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                if reader.fieldnames is None or "path" not in reader.fieldnames:
                    raise DataError(f"data source {source}: a CSV manifest needs a 'path' column "
                                    f"(found {reader.fieldnames or 'no header'})")
                rows = [row["path"] for row in reader if row.get("path")]
        except (OSError, UnicodeDecodeError, csv.Error) as e:
            raise DataError(f"data source {source}: cannot read the CSV manifest: {e}") from None
        resolved = [(Path(r).expanduser(), r) for r in rows]
        return sorted((str(p if p.is_absolute() else path.parent / p), r) for p, r in resolved), 0
    if path.is_file():
        return [(str(path), path.name)], 0
    found, ignored = [], 0
    for root, dirs, files in os.walk(path, followlinks=True):
        dirs.sort()
        for name in files:
            full = Path(root) / name
            if full.suffix.lower() in suffixes:
                found.append((str(full), str(full.relative_to(path))))
            else:
                ignored += 1
    return sorted(found), ignored


def _probe(path: str, min_duration: float) -> _Probe | tuple[str, str]:
    """Header facts of a usable file, or ``(reason, detail)`` why it is not usable."""
    try:
        info = audio_info(path)
    except AudioFileError as e:
        text = str(e)
        reason = "empty" if ("empty file" in text or "no audio" in text) else "unreadable"
        return reason, text
    except OSError as e:
        return "unreadable", f"cannot read {path}: {e}"
    duration = info.frames / info.sample_rate
    if info.channels > _MAX_CHANNELS:
        return "too many channels", f"{path} has {info.channels} channels (at most {_MAX_CHANNELS})"
    if duration < min_duration:
        return "too short", f"{path} lasts {duration:.3g} s (min_duration {min_duration:g} s)"
    # The header may promise more than the data holds (a cut-off download): read the last sample.
    try:
        with sf.SoundFile(path) as f:
            f.seek(info.frames - 1)
            last = f.read(1, dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, OSError) as e:
        return "truncated", f"{path}: cannot read its last sample ({e}); the file is cut off or corrupt"
    if last.shape[0] == 0:
        return "truncated", f"{path}: its header says {info.frames} samples but the data ends before"
    return _Probe(path, info.sample_rate, info.frames, info.channels)


@dataclasses.dataclass(frozen=True)
class _Group:
    """One group's usable files: per source, sorted (``source_files``), and the walking order."""

    name: str
    sources: tuple[str, ...]
    source_files: tuple[np.ndarray, ...]  # per source: indices into the split's file table
    order: np.ndarray  # [n] file indices: the sources' lists concatenated, shuffled once


def _hold_out(relative: str, group: str) -> int:
    return int.from_bytes(hashlib.sha1(f"{group}/{relative}".encode()).digest()[:8], "big")


# ----------------------------------------------------------------------------------------------------
# Items and batches


@dataclasses.dataclass(frozen=True)
class Batch:
    """A batch (or this process's rows of one), on the host, untransformed.

    ``audio [b, 1, T]`` float32 at the model's rate; ``params`` for :func:`make_transform`; per row the
    global item ``index``, its ``group`` and ``file`` (indices into the split's ``groups`` / ``files``),
    the excerpt's ``offset`` in seconds, ``salient`` (louder than the cutoff on some try), ``ok`` (False
    if the file failed to read: the row is silent), ``valid`` (False on validation padding rows).
    """

    step: int
    audio: np.ndarray
    params: TransformParams
    index: np.ndarray
    group: np.ndarray
    file: np.ndarray
    offset: np.ndarray
    salient: np.ndarray
    ok: np.ndarray
    valid: np.ndarray

    @classmethod
    def _from_stacked(cls, step: int, x: Mapping[str, np.ndarray]) -> "Batch":
        a = {k: np.array(v) for k, v in x.items()}  # plain arrays (Grain may hand shared-memory ones)
        return cls(step, a["audio"], TransformParams(a["mask"], a["reached"], a["value"]), a["index"],
                   a["group"], a["file"], a["offset"], a["salient"], a["ok"], a["valid"])


_WARNED: set[str] = set()  # files whose read failure was already reported by this process


class Split:
    """The items of one split (``"train"`` or ``"val"``): groups of files, the excerpt length, the transform
    tree and the seed. Picklable, so worker processes get a copy; every method is a pure function."""

    def __init__(self, name: str, groups: list[_Group], files: list[_Probe], *, duration: float,
                 n_examples: int, sample_rate: int, config: DataConfig, seed: int, augment_prob: float):
        self.name = name
        self.groups = tuple(g.name for g in groups)
        self._groups = groups
        self.files = tuple(f.path for f in files)
        self._rates = np.array([f.sample_rate for f in files], np.int64)
        self._frames = np.array([f.frames for f in files], np.int64)
        self.duration = duration
        self.n_examples = n_examples
        self.n_items = n_examples * len(groups)
        self.sample_rate = sample_rate
        self.length = int(duration * sample_rate)  # samples per item, as the original pads to
        self.seed = seed
        self.loudness_cutoff = config.loudness_cutoff
        self.num_tries = config.num_tries
        self.without_replacement = config.without_replacement
        self.tree = _transform_tree(config, augment_prob)
        self.n_leaves = len(_leaves(self.tree))

    def __repr__(self):
        return (f"Split({self.name!r}: {len(self.files)} files in groups {list(self.groups)}, "
                f"{self.n_items} items of {self.duration} s)")

    def _state(self, idx: int) -> np.random.RandomState:
        return np.random.RandomState(idx) if self.seed == 0 else np.random.RandomState([self.seed, idx])

    def item(self, i: int) -> dict[str, Any]:
        """Item ``i`` (taken modulo ``n_items``): ``audio [1, T]`` and the fields of :class:`Batch`, plus
        ``path``, ``tries`` and the transform parameters in the original's flattened keys (``transform_args``)."""
        i = int(i) % self.n_items
        group = self._groups[i % len(self._groups)]
        idx = i // len(self._groups)
        state = self._state(idx)
        if self.without_replacement:
            file = int(group.order[idx % len(group.order)])
        else:  # audiotools' choose_from_list_of_lists: a source uniformly, then one of its files
            source = state.choice(list(range(len(group.source_files))))
            file = int(group.source_files[source][state.randint(len(group.source_files[source]))])
        audio, offset, salient, tries, ok = self._salient_excerpt(file, state)
        raw: dict[str, Any] = {}
        _draw(self.tree, state, "", raw)
        params = _pack(self.tree, raw)
        return {"audio": audio, "mask": params.mask, "reached": params.reached, "value": params.value,
                "index": np.int64(i), "group": np.int32(i % len(self._groups)), "file": np.int32(file),
                "offset": np.float64(offset), "salient": np.bool_(salient), "ok": np.bool_(ok),
                "valid": np.bool_(True), "path": self.files[file], "tries": tries, "transform_args": raw}

    def _salient_excerpt(self, file: int, state: np.random.RandomState):
        """``AudioSignal.salient_excerpt`` + ``to_mono`` + ``resample`` + ``zero_pad_to``, see the module doc."""
        path, rate, frames = self.files[file], int(self._rates[file]), int(self._frames[file])
        total = frames / rate
        n_read = int(self.duration * rate)
        excerpt, offset, loud, tries, ok = None, 0.0, -np.inf, 0, True
        try:
            with sf.SoundFile(path) as f:
                while True:
                    offset = state.uniform(0, max(total - self.duration, 0))
                    f.seek(int(offset * rate) if offset else 0)
                    excerpt = f.read(n_read, dtype="float32", always_2d=True).T  # [C, n]
                    if excerpt.shape[1] == 0:
                        raise RuntimeError(f"no samples at offset {offset:.3f} s")
                    tries += 1
                    if self.loudness_cutoff is None:
                        break
                    loud = loudness_np(excerpt, rate)
                    if loud > self.loudness_cutoff or tries >= self.num_tries:
                        break
        except (sf.SoundFileError, RuntimeError, OSError, ValueError) as e:
            # Deterministic (the same item fails the same way): a silent item, reported once per file.
            if path not in _WARNED:
                _WARNED.add(path)
                warnings.warn(f"data: {path} failed while reading an excerpt ({e}); its items are silent",
                              DataWarning, stacklevel=2)
            ok, excerpt = False, None
        if excerpt is None:
            return np.zeros((1, self.length), np.float32), offset, False, tries, ok
        mono = excerpt.mean(axis=0, keepdims=True, dtype=np.float32)
        audio = resample_np(mono, rate, self.sample_rate)[:, : self.length]
        if audio.shape[1] < self.length:
            audio = np.pad(audio, ((0, 0), (0, self.length - audio.shape[1])))
        salient = self.loudness_cutoff is None or loud > self.loudness_cutoff
        return np.ascontiguousarray(audio, np.float32), offset, bool(salient), tries, ok

    def _padding_item(self) -> dict[str, Any]:
        zeros = np.zeros(self.n_leaves, bool)
        return {"audio": np.zeros((1, self.length), np.float32), "mask": zeros, "reached": zeros,
                "value": np.zeros(self.n_leaves, np.float32), "index": np.int64(-1), "group": np.int32(-1),
                "file": np.int32(-1), "offset": np.float64(0.0), "salient": np.bool_(False),
                "ok": np.bool_(True), "valid": np.bool_(False)}

    def _row(self, i: int | None) -> dict[str, Any]:
        """The arrays of item ``i`` that a batch carries (``None``: a padding row)."""
        if i is None:
            return self._padding_item()
        item = self.item(i)
        for key in ("path", "tries", "transform_args"):
            del item[key]
        return item

    def batch(self, indices: Sequence[int | None], step: int = -1) -> Batch:
        """The items ``indices`` (``None`` for a padding row) as one :class:`Batch`, in this process."""
        rows = [self._row(i) for i in indices]
        return Batch._from_stacked(step, {k: np.stack([r[k] for r in rows]) for k in rows[0]})


class _TrainRows(NamedTuple):
    """Global item indices of one process's rows of training batch ``step`` (picklable, for workers)."""

    batch_size: int
    rows: int
    process_index: int
    n_items: int

    def __call__(self, step: int) -> list[int | None]:
        first = step * self.batch_size + self.process_index * self.rows
        return [(first + r) % self.n_items for r in range(self.rows)]


class _ValRows(NamedTuple):
    """Item indices of one process's rows of validation batch ``step``; None past the last item."""

    batch_size: int
    rows: int
    process_index: int
    n_items: int

    def __call__(self, step: int) -> list[int | None]:
        first = step * self.batch_size + self.process_index * self.rows
        return [i if i < self.n_items else None for i in range(first, first + self.rows)]


class _Rows:
    """Grain map: position ``k`` of this process's row stream -> the item dict of that row."""

    def __init__(self, split: Split, rows_of: Callable[[int], list[int | None]], rows: int):
        self.split, self.rows_of, self.rows = split, rows_of, rows

    def __call__(self, k: int) -> dict[str, Any]:
        return self.split._row(self.rows_of(int(k) // self.rows)[int(k) % self.rows])


def _worker_init(index: int, count: int) -> None:
    """Data workers compute in numpy only; pin JAX (imported with this module) to the CPU there anyway,
    so that nothing a worker does can claim an accelerator."""
    del index, count
    import jax

    jax.config.update("jax_platforms", "cpu")


def _grain_ready() -> None:
    """Grain 0.2.18 reads absl flags, which fail unless parsed (google/grain#1355); a program that does
    not use absl has none to parse, so mark them parsed (their defaults) before building a pipeline."""
    from absl import flags

    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()


class BatchIterator:
    """Batches of a split in order, from ``start_step``, with Grain (worker processes and threads).

    ``next(it)`` gives :class:`Batch` ``step``, this process's rows of it. ``get_state()`` is a small
    JSON-able dict (the next step and a fingerprint of the data); ``set_state`` continues from it, here or
    in a fresh iterator, with any number of workers or processes. ``close()`` (or ``with``) stops workers.
    """

    def __init__(self, split: Split, rows_of: Callable[[int], list[int | None]], *, rows: int,
                 start_step: int, stop_step: int | None, num_workers: int, num_threads: int,
                 prefetch: int, fingerprint: str):
        self._split, self._rows_of, self._rows = split, rows_of, rows
        self._next_step, self._stop = int(start_step), stop_step
        self._workers, self._threads, self._prefetch = num_workers, num_threads, prefetch
        self.fingerprint = fingerprint
        self._it = None

    def _build(self):
        import grain

        _grain_ready()
        start = self._next_step
        stop = start + _HORIZON if self._stop is None else self._stop
        ds = (grain.MapDataset.range(start * self._rows, stop * self._rows)
              .map(_Rows(self._split, self._rows_of, self._rows))
              .batch(self._rows, drop_remainder=True))
        ds = ds.to_iter_dataset(grain.ReadOptions(num_threads=self._threads, prefetch_buffer_size=self._prefetch))
        if self._workers > 0:
            ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=self._workers,
                                                             per_worker_buffer_size=self._prefetch),
                                worker_init_fn=_worker_init)
        return iter(ds)

    def __iter__(self):
        return self

    def __next__(self) -> Batch:
        if self._stop is not None and self._next_step >= self._stop:
            raise StopIteration
        if self._it is None:
            self._it = self._build()
        batch = Batch._from_stacked(self._next_step, next(self._it))
        self._next_step += 1
        return batch

    def get_state(self) -> dict[str, Any]:
        return {"next_step": self._next_step, "fingerprint": self.fingerprint}

    def set_state(self, state: Mapping[str, Any]) -> None:
        try:
            step = int(state["next_step"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"not a data iterator state: {state!r}") from None
        if step < 0:
            raise DataError(f"data iterator state has a negative next_step: {step}")
        if state.get("fingerprint") not in (None, self.fingerprint):
            warnings.warn(f"data: the files or data settings differ from those of the saved iterator state "
                          f"({state.get('fingerprint')} -> {self.fingerprint}); continuing at step {step}, "
                          "but the batches are not those of the original run", DataWarning, stacklevel=2)
        self.close()
        self._next_step = step

    def close(self) -> None:
        if self._it is not None:
            close = getattr(self._it, "close", None)
            if close is not None:
                close()
            self._it = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown
            pass


# ----------------------------------------------------------------------------------------------------
# The whole: scan, split, iterate


def _check_shards(batch_size: int, process_index: int, process_count: int, what: str) -> int:
    if not (isinstance(process_count, int) and process_count >= 1 and 0 <= process_index < process_count):
        raise DataError(f"process_index must be in [0, process_count), got {process_index} of {process_count}")
    if batch_size % process_count:
        raise DataError(f"{what} {batch_size} is not divisible by the {process_count} processes")
    return batch_size // process_count


class Data:
    """The scanned data: ``train`` and ``val`` :class:`Split` s, the scan ``report``, and batch iterators.

    Made by :func:`load_data`. ``fingerprint`` identifies the files and every setting items depend on
    (compare it across hosts; it is part of the iterator state).
    """

    def __init__(self, config: DataConfig, sample_rate: int, train: Split, val: Split, report: DataReport):
        self.config, self.sample_rate = config, sample_rate
        self.train, self.val, self.report = train, val, report
        digest = hashlib.sha256()
        for split in (train, val):
            digest.update(json.dumps([split.name, split.groups, split.duration, split.n_examples, split.seed,
                                      [g.order.tolist() for g in split._groups], split.files,
                                      split._rates.tolist(), split._frames.tolist()]).encode())
        settings = config.to_dict()
        for key in ("num_workers", "num_threads", "prefetch"):
            del settings[key]
        digest.update(json.dumps([sample_rate, settings], default=str).encode())
        self.fingerprint = digest.hexdigest()[:16]
        self.transform = make_transform(config, sample_rate)

    def __repr__(self):
        return f"Data({self.train!r}, {self.val!r})"

    def _train_rows(self, process_index: int, process_count: int) -> _TrainRows:
        rows = _check_shards(self.config.batch_size, process_index, process_count, "batch_size")
        return _TrainRows(self.config.batch_size, rows, process_index, self.train.n_items)

    def _val_rows(self, process_index: int, process_count: int) -> _ValRows:
        rows = _check_shards(self.config.val_batch_size, process_index, process_count, "val_batch_size")
        return _ValRows(self.config.val_batch_size, rows, process_index, self.val.n_items)

    def train_rows(self, step: int, process_index: int = 0, process_count: int = 1) -> list[int]:
        """Global item indices of this process's rows of training batch ``step``."""
        return self._train_rows(process_index, process_count)(step)

    def train_batch(self, step: int, process_index: int = 0, process_count: int = 1) -> Batch:
        """Training batch ``step`` (this process's rows), computed here without Grain."""
        return self.train.batch(self.train_rows(step, process_index, process_count), step)

    def train_batches(self, start_step: int = 0, *, process_index: int = 0, process_count: int = 1,
                      num_workers: int | None = None, state: Mapping[str, Any] | None = None) -> BatchIterator:
        """Endless iterator of training batches from ``start_step`` (or from a saved ``state``)."""
        rows_of = self._train_rows(process_index, process_count)
        it = BatchIterator(self.train, rows_of, rows=rows_of.rows, start_step=start_step, stop_step=None,
                           num_workers=self.config.num_workers if num_workers is None else num_workers,
                           num_threads=self.config.num_threads, prefetch=self.config.prefetch,
                           fingerprint=self.fingerprint)
        if state is not None:
            it.set_state(state)
        return it

    @property
    def val_steps(self) -> int:
        """Validation batches in one pass: ``ceil(val items / val_batch_size)``."""
        return -(-self.val.n_items // self.config.val_batch_size)

    def val_rows(self, step: int, process_index: int = 0, process_count: int = 1) -> list[int | None]:
        """Item indices of this process's rows of validation batch ``step`` (None: padding past the end)."""
        return self._val_rows(process_index, process_count)(step)

    def val_batch(self, step: int, process_index: int = 0, process_count: int = 1) -> Batch:
        """Validation batch ``step`` (this process's rows), computed here without Grain."""
        return self.val.batch(self.val_rows(step, process_index, process_count), step)

    def val_batches(self, *, process_index: int = 0, process_count: int = 1,
                    num_workers: int | None = None) -> BatchIterator:
        """One pass over the validation set: ``val_steps`` batches, the same in every run."""
        rows_of = self._val_rows(process_index, process_count)
        return BatchIterator(self.val, rows_of, rows=rows_of.rows, start_step=0, stop_step=self.val_steps,
                             num_workers=self.config.num_workers if num_workers is None else num_workers,
                             num_threads=self.config.num_threads, prefetch=self.config.prefetch,
                             fingerprint=self.fingerprint)


def _scan_split(split: str, groups: Mapping[str, tuple[str, ...]], config: DataConfig, suffixes, pool):
    """Usable files per group and source: ``({group: [(source, [(probe, relative path), ...]), ...]},
    skipped, ignored)``. Raises DataError for a source without usable audio."""
    found, skipped, ignored = {}, [], 0
    for group, sources in groups.items():
        found[group] = []
        for source in sources:
            try:
                candidates, n_ignored = _candidates(source, suffixes)
            except DataError as e:
                raise DataError(f"{split} group '{group}': {e}") from None
            ignored += n_ignored
            usable = []
            for (path, relative), probe in zip(candidates, pool.map(lambda c: _probe(c[0], config.min_duration),
                                                                     candidates)):
                if isinstance(probe, _Probe):
                    usable.append((probe, relative))
                else:
                    skipped.append(SkippedFile(split, group, path, *probe))
            if not usable:
                here = [s for s in skipped if s.group == group and s.split == split]
                why = (f"{len(candidates)} audio file(s), none usable "
                       f"({', '.join(f'{n} {r}' for r, n in sorted(Counter(s.reason for s in here).items()))}; "
                       f"e.g. {here[-1].detail})") if candidates else "no audio files"
                raise DataError(f"{split} group '{group}': source {source} has no usable audio: {why}")
            found[group].append((source, usable))
    return found, skipped, ignored


def _make_split(name: str, found, config: DataConfig, sample_rate: int, *, duration, n_examples, seed,
                augment_prob) -> Split:
    files: list[_Probe] = []
    groups = []
    for group, sources in found.items():
        per_source = []
        for _, usable in sources:
            # Sorted by path within a source (audiotools' read_sources); duplicates across sources stay.
            usable = sorted(usable, key=lambda u: u[0].path)
            per_source.append(np.arange(len(files), len(files) + len(usable), dtype=np.int64))
            files.extend(u[0] for u in usable)
        pairs = [(s, k) for s, ids in enumerate(per_source) for k in range(len(ids))]
        if config.shuffle:
            np.random.RandomState(seed).shuffle(pairs)  # AudioLoader: shuffles (source, item) pairs
        order = np.array([per_source[s][k] for s, k in pairs], np.int64)
        groups.append(_Group(group, tuple(s for s, _ in sources), tuple(per_source), order))
    return Split(name, groups, files, duration=duration, n_examples=n_examples, sample_rate=sample_rate,
                 config=config, seed=seed, augment_prob=augment_prob)


def load_data(config: DataConfig, sample_rate: int, *, warn: bool = True) -> Data:
    """Scan and check every source, hold out validation files if ``config.val`` is None, and return the
    :class:`Data`. Raises :class:`DataError` (one line) if there are no training sources, a source does not
    exist or has no usable audio, or no validation files can be held out. With ``warn``, skipped files
    are summarised in one :class:`DataWarning`."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate < 1:
        raise DataError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    sample_rate = int(sample_rate)
    if not config.train:
        raise DataError("no training data: give data.train (named groups of folders or CSV manifests)")
    suffixes = audio_suffixes()
    with ThreadPoolExecutor(max_workers=16) as pool:  # header reads are I/O bound
        train, skipped, ignored = _scan_split("train", config.train, config, suffixes, pool)
        held_out = 0
        if config.val is not None:
            val, val_skipped, val_ignored = _scan_split("val", config.val, config, suffixes, pool)
            skipped, ignored = skipped + val_skipped, ignored + val_ignored
        else:
            val = {}
            for group, sources in train.items():
                everything = [(u, source) for source, usable in sources for u in usable]
                if len(everything) < 2:
                    continue
                n_hold = max(1, math.floor(len(everything) * config.holdout_fraction + 0.5))
                chosen = sorted(everything, key=lambda e: _hold_out(e[0][1], group))[:n_hold]
                chosen_paths = {u[0].path for u, _ in chosen}
                train[group] = [(source, [u for u in usable if u[0].path not in chosen_paths])
                                for source, usable in sources]
                train[group] = [(s, u) for s, u in train[group] if u]
                val[group] = [("held out", [u for u, _ in chosen])]
                held_out += n_hold
            if not val:
                raise DataError("no validation data: data.val is not set and no training group has two usable "
                                "files to hold one out; give data.val")
    train_split = _make_split("train", train, config, sample_rate, duration=config.duration,
                              n_examples=config.n_examples, seed=config.seed, augment_prob=config.augment_prob)
    val_split = _make_split("val", val, config, sample_rate, duration=config.val_duration,
                            n_examples=config.val_examples, seed=0, augment_prob=config.val_augment_prob)
    report = DataReport({"train": len(train_split.files), "val": len(val_split.files)}, tuple(skipped),
                        ignored, held_out)
    if warn and skipped:
        warnings.warn(report.summary(), DataWarning, stacklevel=2)
    return Data(config, sample_rate, train_split, val_split, report)
