"""Tokenize datasets: code a corpus of clips with one compiled program, on every device and host.

    jaxdac encode corpus/ --output tokens/ --format shards     # the command (cli.py)
    summary = tokenize_files(model, ["a.wav", "b.flac"], "tokens/", format="shards")
    dac_files = compress_clips(model, [clip_a, clip_b], sample_rate=44100)   # arrays [C, T]
    tokens = open_tokens("tokens/"); codes = tokens[0]        # [channels, n_codebooks, frames]

:func:`jaxdac.compress` codes one file at a time in windows whose shape follows the file's length, so
a corpus of clips of N different lengths compiles N programs (about 10 s each on two CPU cores). Here
every clip, whatever its length, goes through one program of a fixed shape ``[rows, 1, window]``:

* **Packing.** Clips are laid side by side into rows of ``window`` samples (:class:`_Packer`): a clip
  that fits in what is left of a row goes in whole; a longer one is cut into pieces that carry the
  seamless context (:func:`jaxdac.geometry.encoder_context`) on both sides and continue in the next
  rows. Pieces stay :func:`jaxdac.geometry.packing_gap` frames apart.
* **Exactness.** The encoder gets each row's pieces (``pieces`` of :class:`jaxdac.nn.codec.Encoder`)
  and zeroes the activations outside them before every convolution, which gives each piece its own
  zero padding at every layer: a piece's codes are those of coding it alone, so a whole clip's codes
  equal ``model.encode`` of that clip, and a cut clip's kept frames equal them too, as in seamless
  chunking. Lengths are traced values, not shapes: one compilation serves the whole corpus.
* **Around the model.** A thread pool reads, resamples and measures the loudness of files ahead of it
  (the very pass :func:`jaxdac.compress_file` makes, so normalisation and DAC files equal
  ``compress_file``'s); batches are sharded over the local devices (``jax.sharding``); a writer thread
  writes each output atomically. With ``jax.distributed`` (see :mod:`jaxdac.distributed`) each process
  codes its own share of the corpus and process 0 writes the merged index.

Outputs (``format``): ``dac`` files as ``jaxdac encode`` writes them, ``npy`` files of codes
(``uint16 [channels, n_codebooks, frames]``), or ``shards``: a few large ``.npy`` files of codes, each
clip's codes flattened one after another, with ``index.npy`` (one row per clip: path, shard, offset,
channels, frames, sample rate, original length, input loudness; a structured array numpy memory-maps)
and ``manifest.json`` (model, code layout, shard files, skipped files). Shards are a fixed partition
of the input list (by estimated size), written atomically each with its own index and a marker, so
``resume`` skips whole finished shards and an interrupted run resumed ends with the same files as an
uninterrupted one; it is also the unit processes share, so any number of processes writes the same
files.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import heapq
import itertools
import json
import os
import queue
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, NamedTuple, Sequence

import jax
import numpy as np
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from jaxdac import geometry, inference
from jaxdac.distributed import barrier
from jaxdac.io.atomic import atomic_output
from jaxdac.io.dacfile import DACFile, write_dac_file
from jaxdac.nn.codec import DAC

FORMATS = ("dac", "npy", "shards")
SHARD_SIZE = 256 << 20  # bytes of codes per shard, estimated from the files' headers
MANIFEST, INDEX, SHARDS = "manifest.json", "index.npy", "shards"
INDEX_FIELDS = (("shard", "<i4"), ("offset", "<i8"), ("channels", "<i4"), ("frames", "<i8"),
                ("sample_rate", "<i4"), ("original_length", "<i8"), ("input_db", "<f4"))

# Programs XLA built in this process (every one, the model's and the DSP's): "programs" counts each
# compiled or loaded from the persistent compilation cache, "cache_hits" the loaded ones. The summary
# reports compilations (the difference); the tests bound them.
COMPILATIONS = collections.Counter()


def _count_program(event: str, duration: float, **kwargs) -> None:
    if event == "/jax/core/compile/backend_compile_duration":
        COMPILATIONS["programs"] += 1


def _count_cache_hit(event: str, **kwargs) -> None:
    if event == "/jax/compilation_cache/cache_hits":
        COMPILATIONS["cache_hits"] += 1


def compilations() -> int:
    """XLA compilations so far in this process (programs not found in the persistent cache)."""
    return COMPILATIONS["programs"] - COMPILATIONS["cache_hits"]


jax.monitoring.register_event_duration_secs_listener(_count_program)
jax.monitoring.register_event_listener(_count_cache_hit)


class TokenizeError(ValueError):
    """A run cannot start or go on; the message is one line."""


# --- clips ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class _Clip:
    """One input ready for the model: ``x [C, n]`` resampled, loudness-normalised and peak-limited."""

    key: int
    name: str
    prepared: inference._Prepared  # what the first pass measured; makes the DAC file
    x: np.ndarray | None
    frames: int  # code frames per channel


class _Skip(NamedTuple):
    key: int
    name: str
    reason: str


def _prepare(model: DAC, key: int, name: str, source, normalize_db: float | None) -> _Clip:
    """Read ``source`` (an ``inference`` source) as ``compress`` does: the same two passes."""
    prepared = inference._Prepared(source, model.sample_rate, normalize_db)
    x = np.concatenate(list(prepared.blocks()), axis=-1)[:, 0]  # [C, n]
    frames = geometry.padded_input_length(model.config, prepared.length) // model.hop_length
    return _Clip(key, name, prepared, x, frames)


# --- packing ----------------------------------------------------------------------------------------------
class _Placement(NamedTuple):
    """A piece of one channel of a clip in a batch: clip frames ``[start, stop)`` at frame ``offset`` of
    ``row``, of which frames ``[keep_start, keep_stop)`` are kept."""

    key: int
    channel: int
    row: int
    offset: int
    start: int
    keep_start: int
    keep_stop: int


class _Batch(NamedTuple):
    audio: np.ndarray  # [rows, window] float32, zeros between the pieces
    pieces: np.ndarray  # [rows, K, 2] int32: (start, length) in samples, empty slots (0, 0)
    placed: list[_Placement]


class _Packer:
    """Lays the channels of clips into rows of ``frames`` code frames, ``rows`` rows a batch.

    Rows fill left to right. A signal that fits in the rest of the row goes in whole; otherwise the
    part that fits (with ``context.right`` frames after the kept ones, and ``context.left`` before them
    unless it starts the signal) goes in and the rest continues in the next row, which with the mask
    gives the kept frames of whole-signal coding (:func:`jaxdac.geometry.seamless_plan`'s argument). A
    row closes when less than ``min_keep`` kept frames would fit, or after ``max_pieces`` pieces.
    """

    def __init__(self, rows: int, frames: int, hop: int, context: geometry.Context, gap: int, max_pieces: int = 16):
        self.rows, self.frames, self.hop, self.context, self.gap = rows, frames, hop, context, gap
        self.max_pieces = max_pieces
        self.min_keep = max(1, context.left + context.right)  # a piece is at most half context
        if frames < context.left + context.right + self.min_keep:
            raise ValueError(f"rows of {frames} frames are too short for the model's context "
                             f"({context.left} + {context.right} frames); use at least {2 * self.min_keep}")
        self._start_batch()

    def _start_batch(self) -> None:
        self.audio = np.zeros((self.rows, self.frames * self.hop), np.float32)
        self.pieces = np.zeros((self.rows, self.max_pieces, 2), np.int32)
        self.placed: list[_Placement] = []
        self.row = self.offset = self.count = 0

    def add(self, key: int, x: np.ndarray, frames: int) -> tuple[list[_Batch], int]:
        """Place every channel of ``x [C, n]`` (``frames`` code frames each); returns the batches this
        completed and the number of pieces the clip was cut into."""
        done, n_pieces = [], 0
        for channel, signal in enumerate(x):
            pos = 0  # the next frame to keep
            while pos < frames:
                left = self.context.left if pos else 0
                free = self.frames - self.offset
                if frames - (pos - left) <= free:  # the rest fits
                    keep_stop = stop = frames
                elif free - left - self.context.right >= self.min_keep:
                    keep_stop = pos + free - left - self.context.right
                    stop = keep_stop + self.context.right
                else:
                    done += self._next_row()
                    continue
                self._place(_Placement(key, channel, self.row, self.offset, pos - left, pos, keep_stop), signal, stop)
                n_pieces += 1
                pos = keep_stop
                if self.count == self.max_pieces or self.offset >= self.frames:
                    done += self._next_row()
        return done, n_pieces

    def _place(self, p: _Placement, signal: np.ndarray, stop: int) -> None:
        a, b = p.start * self.hop, min(stop * self.hop, signal.shape[-1])
        at = p.offset * self.hop
        self.audio[p.row, at : at + b - a] = signal[a:b]  # the clip's last frame is zero-padded, as encode pads
        self.pieces[p.row, self.count] = (at, (stop - p.start) * self.hop)
        self.placed.append(p)
        self.offset += stop - p.start + self.gap
        self.count += 1

    def _next_row(self) -> list[_Batch]:
        self.row, self.offset, self.count = self.row + 1, 0, 0
        return self.flush() if self.row == self.rows else []

    def flush(self) -> list[_Batch]:
        """The current batch, if it holds anything (its empty rows stay empty); a new one begins."""
        batch = _Batch(self.audio, self.pieces, self.placed) if self.placed else None
        self._start_batch()
        return [batch] if batch else []


# --- the model side ---------------------------------------------------------------------------------------
class _Coder:
    """Packed batches -> codes, with the model's prepared parameters replicated on every local device
    and each batch's rows split over them."""

    def __init__(self, model: DAC, rows: int, n_quantizers: int | None, dtype: str, devices=None):
        devices = list(devices if devices is not None else jax.local_devices())
        if rows % len(devices):
            raise ValueError(f"rows ({rows}) must be a multiple of the {len(devices)} local devices")
        mesh = Mesh(np.asarray(devices), ("data",))
        self.split_rows = NamedSharding(mesh, PartitionSpec("data"))
        self.graphdef, state = nnx.split(model)
        prepared = inference._chunk_state(self.graphdef, state, dtype)  # weight norm folded, as compress
        self.state = jax.device_put(prepared, NamedSharding(mesh, PartitionSpec()))
        self.n_quantizers, self.dtype = n_quantizers, dtype

    def __call__(self, batch: _Batch) -> jax.Array:  # [rows, n_q, frames], still computing (async dispatch)
        audio = jax.device_put(batch.audio[:, None, :], self.split_rows)
        pieces = jax.device_put(batch.pieces, self.split_rows)
        return inference._encode_chunks_prepared(self.graphdef, self.state, audio, self.n_quantizers, True,
                                                 self.dtype, pieces)


class _Engine:
    """Clips in, ``(clip, codes [C, n_q, frames] int32)`` out as each clip's last piece is coded."""

    def __init__(self, model: DAC, *, win_duration: float, rows: int | None, n_quantizers: int | None,
                 dtype: str, devices=None):
        inference._check_options(rows or 1, dtype)
        if n_quantizers is not None and not 1 <= n_quantizers <= model.n_codebooks:
            raise ValueError(f"n_quantizers must be in 1..{model.n_codebooks}, got {n_quantizers}")
        n_devices = len(devices) if devices is not None else jax.local_device_count()
        rows = rows or n_devices
        context = geometry.encoder_context(model.config)
        # Rows shorter than twice the context could not hold a piece cut from a longer clip.
        frames = max(inference._window_frames(model, win_duration, 0), 2 * (context.left + context.right))
        self.packer = _Packer(rows, frames, model.hop_length, context, geometry.packing_gap(model.config))
        self.coder = _Coder(model, rows, n_quantizers, dtype, devices)
        self.n_q = n_quantizers or model.n_codebooks

    def run(self, items: Iterable[_Clip | _Skip]) -> Iterator[tuple[_Clip, np.ndarray] | _Skip]:
        pending: dict[int, list] = {}  # key -> [clip, codes, pieces not yet coded]
        running: collections.deque = collections.deque()  # (batch, codes being computed)

        def finish(batch: _Batch, result: jax.Array):
            codes = np.asarray(result)
            for p in batch.placed:
                entry = pending[p.key]
                at = p.offset + p.keep_start - p.start
                entry[1][p.channel, :, p.keep_start : p.keep_stop] = codes[p.row, :, at : at + p.keep_stop - p.keep_start]
                entry[2] -= 1
                if not entry[2]:
                    del pending[p.key]
                    yield entry[0], entry[1]

        def submit(batches):
            for batch in batches:
                running.append((batch, self.coder(batch)))
                while len(running) > 1:  # one batch computing while the next one is packed
                    yield from finish(*running.popleft())

        for item in items:
            if isinstance(item, _Skip):
                yield item
                continue
            batches, n_pieces = self.packer.add(item.key, item.x, item.frames)
            pending[item.key] = [item, np.zeros((item.x.shape[0], self.n_q, item.frames), np.int32), n_pieces]
            item.x = None  # copied into the batches
            yield from submit(batches)
        yield from submit(self.packer.flush())
        while running:
            yield from finish(*running.popleft())


def _read_ahead(items: Sequence, read, workers: int) -> Iterator:
    """``read(item)`` for each item in order, ``workers`` threads reading ahead of the consumer."""
    pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="jaxdac-read")
    ahead = collections.deque()
    todo = iter(items)
    try:
        for item in itertools.islice(todo, 2 * max(1, workers)):
            ahead.append(pool.submit(read, item))
        while ahead:
            result = ahead.popleft().result()
            for item in itertools.islice(todo, 1):
                ahead.append(pool.submit(read, item))
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# --- in memory ----------------------------------------------------------------------------------------------
def compress_clips(
    model: DAC,
    clips: Sequence,
    sample_rate: int | Sequence[int],
    *,
    win_duration: float = 5.0,
    rows: int | None = None,
    n_quantizers: int | None = None,
    normalize_db: float | None = -16.0,
    dtype: str = "float32",
    devices=None,
) -> list[DACFile]:
    """:func:`jaxdac.compress` of many clips (each ``[C, T]`` or ``[T]``) in packed batches: one DAC file
    per clip, equal to ``compress(model, clip, rate, win_duration=None)`` (whole-file codes), whatever
    the lengths, with one compiled program of ``rows`` windows of ``win_duration`` seconds (default
    rows: one per local device, or ``devices``)."""
    rates = [sample_rate] * len(clips) if isinstance(sample_rate, (int, np.integer)) else list(sample_rate)
    if len(rates) != len(clips):
        raise ValueError(f"{len(clips)} clips but {len(rates)} sample rates")
    engine = _Engine(model, win_duration=win_duration, rows=rows, n_quantizers=n_quantizers, dtype=dtype,
                     devices=devices)

    def read(key):
        audio = inference._as_batch(clips[key])
        if audio.shape[0] != 1:
            raise ValueError(f"clip {key}: expected [channels, samples], got shape {audio.shape[1:]}")
        return _prepare(model, key, str(key), inference._ArraySource(audio, int(rates[key])), normalize_db)

    out: list[DACFile | None] = [None] * len(clips)
    for clip, codes in engine.run(read(key) for key in range(len(clips))):
        out[clip.key] = clip.prepared.dac_file(codes, clip.frames, True)
    return out


# --- files ---------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Source:
    """An input file and its name in the outputs (its path relative to the input folder, ``/``-separated).
    A ``required`` source that cannot be read stops the run; others are reported and skipped."""

    path: Path
    name: str
    required: bool = False


@dataclasses.dataclass
class Summary:
    """What a run did (over every process, on process 0; its own share elsewhere)."""

    files: int = 0  # inputs given
    coded: int = 0  # coded by this run
    done_before: int = 0  # found finished (resume)
    audio_seconds: float = 0.0  # of the clips coded by this run
    seconds: float = 0.0  # wall time
    compilations: int = 0  # XLA compilations during the run (process 0's)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (name, reason)

    def line(self) -> str:
        hours = self.audio_seconds / 3600
        speed = self.audio_seconds / self.seconds if self.seconds else 0.0
        text = (f"jaxdac: tokenized {self.coded} of {self.files} files ({hours:.3f} h of audio) in "
                f"{self.seconds:.1f} s, {speed:.1f}x real time, {self.compilations} compilations")
        if self.done_before:
            text += f"; {self.done_before} already done"
        if self.skipped:
            text += f"; {len(self.skipped)} skipped (listed above)"
        return text


class _Unit(NamedTuple):
    """What one process takes as a whole: a shard (``format="shards"``) or one file."""

    index: int
    keys: tuple[int, ...]
    size: float  # estimated code bytes, for sharing the units out


def _code_dtype(model: DAC) -> np.dtype:
    return np.dtype(np.uint16) if model.config.codebook_size <= 1 << 16 else np.dtype(np.int32)


def _header_seconds(path: Path) -> tuple[float, int]:
    """``(seconds, channels)`` of an audio file, from its header (MP3: an estimate)."""
    from jaxdac.io.audio import audio_info

    info = audio_info(path)
    return info.frames / info.sample_rate, info.channels


def _code_bytes(model: DAC, seconds: float, channels: int, n_q: int) -> float:
    frames = seconds * model.sample_rate / model.hop_length + 1
    return channels * n_q * frames * _code_dtype(model).itemsize


def _units(sizes: list[float | None], shards: bool, shard_size: int) -> list[_Unit]:
    """Consecutive files up to ``shard_size`` estimated bytes per shard, or one unit per file; sources
    whose header could not be read (None) are left out."""
    if not shards:
        return [_Unit(k, (k,), size) for k, size in enumerate(sizes) if size is not None]
    units, keys, total = [], [], 0.0
    for k, size in enumerate(sizes):
        if size is None:
            continue
        keys.append(k)
        total += size
        if total >= shard_size:
            units.append(_Unit(len(units), tuple(keys), total))
            keys, total = [], 0.0
    if keys:
        units.append(_Unit(len(units), tuple(keys), total))
    return units


def _share(units: list[_Unit], process: int, count: int) -> list[_Unit]:
    """This process's units: largest first to the least loaded process (deterministic), in list order."""
    loads = [(0.0, p) for p in range(count)]  # a heap of (estimated bytes, process)
    mine = []
    for unit in sorted(units, key=lambda u: (-u.size, u.index)):
        load, owner = heapq.heappop(loads)
        heapq.heappush(loads, (load + unit.size, owner))
        if owner == process:
            mine.append(unit)
    return sorted(mine)


def _shard_path(output: Path, index: int, suffix: str) -> Path:
    return output / SHARDS / f"codes-{index:05d}{suffix}"


class _Writer(threading.Thread):
    """Writes coded clips and records skipped ones, off the main thread; errors are kept for it."""

    def __init__(self, model, output: Path, format: str, sources: list[Source], units: list[_Unit],
                 overwrite: bool, progress, on_written, on_skipped):
        super().__init__(name="jaxdac-write", daemon=True)
        self.model, self.output, self.format, self.sources = model, output, format, sources
        self.overwrite, self.progress, self.on_written, self.on_skipped = overwrite, progress, on_written, on_skipped
        self.unit_of = {k: u for u in units for k in u.keys}
        self.waiting = {u.index: set(u.keys) for u in units}
        self.shard_rows: dict[int, dict[int, tuple]] = collections.defaultdict(dict)
        self.queue: queue.Queue = queue.Queue(maxsize=64)
        self.error: BaseException | None = None
        self.coded, self.audio_seconds, self.skipped = 0, 0.0, []
        self.dtype = _code_dtype(model)

    def put(self, item) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def close(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain; the main thread raises
            try:
                self._write(item)
            except BaseException as e:  # noqa: BLE001 - handed to the main thread
                self.error = e

    def _write(self, item) -> None:
        if isinstance(item, _Skip):
            self.skip(item.name, item.reason)
            self._done(item.key, None)
            return
        clip, codes = item
        seconds = clip.prepared.original_length / clip.prepared.source.sample_rate
        if self.format == "dac":
            dac_file = clip.prepared.dac_file(codes, clip.frames, True)
            target = _target(self.output, "dac", self.sources[clip.key])
            target.parent.mkdir(parents=True, exist_ok=True)
            self.on_written(write_dac_file(dac_file, target, overwrite=self.overwrite))
        elif self.format == "npy":
            target = _target(self.output, "npy", self.sources[clip.key])
            target.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(target, overwrite=self.overwrite) as f:
                np.save(f, codes.astype(self.dtype))
            self.on_written(target)
        else:
            self.shard_rows[self.unit_of[clip.key].index][clip.key] = (clip, codes.astype(self.dtype))
        self.coded += 1
        self.audio_seconds += seconds
        self._done(clip.key, seconds)

    def _done(self, key: int, seconds: float | None) -> None:
        if self.progress is not None:
            self.progress.advance(key, seconds)
        if self.format != "shards":
            return
        unit = self.unit_of[key]
        waiting = self.waiting[unit.index]
        waiting.discard(key)
        if not waiting:
            self._write_shard(unit)

    def _write_shard(self, unit: _Unit) -> None:
        """The shard's codes, then its index rows, then its marker: a shard with a marker is complete."""
        rows = self.shard_rows.pop(unit.index, {})
        names = [self.sources[k].name for k in unit.keys]
        index = _index_rows([(self.sources[k].name, rows[k]) for k in unit.keys if k in rows], unit.index)
        flat = [codes.reshape(-1) for _, codes in (rows[k] for k in unit.keys if k in rows)]
        for path, array in ((_shard_path(self.output, unit.index, ".npy"),
                             np.concatenate(flat) if flat else np.zeros(0, self.dtype)),
                            (_shard_path(self.output, unit.index, ".index.npy"), index)):
            with atomic_output(path, overwrite=True) as f:
                np.save(f, array)
        skipped = [[name, reason] for name, reason in self.skipped if name in set(names)]
        _write_json(_shard_path(self.output, unit.index, ".json"), {"sources": names, "skipped": skipped})
        self.on_written(_shard_path(self.output, unit.index, ".npy"))

    def skip(self, name: str, reason: str) -> None:
        self.skipped.append((name, reason))
        self.on_skipped(name, reason)


def _index_rows(rows: list[tuple[str, tuple]], shard: int) -> np.ndarray:
    """The index rows of one shard's clips, ``rows`` = ``[(name, (clip, codes)), ...]`` in shard order."""
    paths = [name.encode() for name, _ in rows]
    dtype = np.dtype([("path", f"S{max([len(p) for p in paths] + [1])}"), *INDEX_FIELDS])
    index = np.zeros(len(rows), dtype)
    offset = 0
    for i, (path, (_, (clip, codes))) in enumerate(zip(paths, rows)):
        index[i] = (path, shard, offset, codes.shape[0], codes.shape[2], clip.prepared.source.sample_rate,
                    clip.prepared.original_length, clip.prepared.input_db[0])
        offset += codes.size
    return index


def _write_json(path: Path, value) -> None:
    with atomic_output(path, overwrite=True) as f:
        f.write((json.dumps(value, indent=1) + "\n").encode())


class _Progress:
    """One bar over this process's share of the corpus, in seconds of audio (from the headers, then
    the real lengths as clips finish), with clips done and the speed in hours of audio per hour."""

    def __init__(self, estimates: dict[int, float], enabled: bool):
        from tqdm import tqdm

        self.estimates, self.total_clips, self.clips = estimates, len(estimates), 0
        self.bar = tqdm(total=sum(estimates.values()), unit="s", desc="tokenize", disable=not enabled,
                        dynamic_ncols=True, bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s "
                        "of audio [{elapsed}<{remaining}, {rate_fmt}] {postfix}")
        self.lock = threading.Lock()

    def advance(self, key: int, seconds: float | None) -> None:
        with self.lock:
            self.clips += 1
            estimate = self.estimates.get(key, 0.0)
            if seconds is not None and seconds != estimate:  # the header's length was an estimate (MP3)
                self.bar.total += seconds - estimate
            self.bar.update(estimate if seconds is None else seconds)
            self.bar.set_postfix_str(f"{self.clips}/{self.total_clips} clips", refresh=False)

    def close(self) -> None:
        self.bar.close()


def tokenize_files(
    model: DAC,
    sources: Sequence[Source | str | os.PathLike],
    output: str | os.PathLike,
    *,
    format: str = "dac",
    win_duration: float = 5.0,
    rows: int | None = None,
    n_quantizers: int | None = None,
    normalize_db: float | None = -16.0,
    dtype: str = "float32",
    workers: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    shard_size: int = SHARD_SIZE,
    progress: bool = False,
    on_written=None,
    on_skipped=None,
    devices=None,
) -> Summary:
    """Code audio files into ``output``, every clip length with one compiled program (module docstring).

    ``format``: ``dac`` (``output/<name>.dac``, equal to :func:`jaxdac.compress_file` with seamless
    chunking), ``npy`` (``output/<name>.npy``, ``uint16 [channels, n_codebooks, frames]``) or ``shards``
    (``output/shards/``, ``output/index.npy``, ``output/manifest.json``; see :func:`open_tokens`).
    ``win_duration`` seconds per row and ``rows`` rows per call (default: one per local device) set the
    program's shape and memory; ``workers`` threads read ahead (default ``min(4, cpus)``). ``resume``
    skips what an interrupted run finished (files that exist, shards with their marker);
    ``overwrite`` replaces existing outputs; without either, existing outputs are an error.

    Several processes (``jax.distributed``, :func:`jaxdac.distributed.initialize_distributed`) each call
    this with the same arguments: each codes its share, and process 0 writes the manifest and the
    merged index once all are done; ``output`` must be a folder they all see.

    ``progress`` shows a bar over the corpus (process 0); ``on_written(path)`` is called for every file
    written, ``on_skipped(name, reason)`` for every input that cannot be read (it is skipped, listed in
    the summary and the manifest; a ``required`` source stops the run instead).
    """
    start_time = time.perf_counter()
    compiled_before = compilations()
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    sources = [s if isinstance(s, Source) else Source(Path(s), Path(s).name) for s in sources]
    output = Path(output)
    process, n_processes = jax.process_index(), jax.process_count()
    engine = _Engine(model, win_duration=win_duration, rows=rows, n_quantizers=n_quantizers, dtype=dtype,
                     devices=devices)

    # Plan: every process computes the same units from the headers and takes its share.
    headers: list[tuple[float, int] | None] = []
    skipped_early: list[tuple[str, str]] = []  # files whose header cannot be read: in no unit
    for source in sources:
        try:
            headers.append(_header_seconds(source.path))
        except (OSError, ValueError) as e:
            if source.required:
                raise
            headers.append(None)
            skipped_early.append((source.name, _reason(source, e)))
    sizes = [None if h is None else _code_bytes(model, *h, engine.n_q) for h in headers]
    units = _units(sizes, format == "shards", shard_size)
    _check_outputs(output, format, sources, units, resume, overwrite, process)
    share = _share(units, process, n_processes)
    mine = [u for u in share if not (resume and _finished(output, format, sources, u))]
    keys = [k for u in mine for k in u.keys]

    bar = _Progress({k: headers[k][0] for k in keys}, progress and process == 0)
    writer = _Writer(model, output, format, sources, mine, overwrite or resume, bar, on_written or _ignore,
                     on_skipped or _ignore)
    writer.start()
    try:
        if process == 0:
            for name, reason in skipped_early:
                writer.skip(name, reason)

        def read(key: int):
            source = sources[key]
            try:
                return _prepare(model, key, source.name, inference._FileSource(source.path), normalize_db)
            except (OSError, ValueError, RuntimeError) as e:
                return _Skip(key, source.name, _reason(source, e))

        for item in engine.run(_read_ahead(keys, read, workers or min(4, os.cpu_count() or 1))):
            if isinstance(item, _Skip) and sources[item.key].required:
                raise TokenizeError(item.reason)
            writer.put(item)
    finally:
        try:
            writer.close()
        finally:
            bar.close()

    summary = Summary(files=len(sources), coded=writer.coded, done_before=sum(len(u.keys) for u in share) - len(keys),
                      audio_seconds=writer.audio_seconds, skipped=writer.skipped,
                      compilations=compilations() - compiled_before)
    if n_processes > 1:
        summary = _gather(output, summary, process, n_processes)
    if process == 0 and format == "shards":
        _write_manifest(model, output, units, skipped_early, engine.n_q, dtype)
        for name in (INDEX, MANIFEST):
            (on_written or _ignore)(output / name)
    summary.seconds = time.perf_counter() - start_time
    return summary


def _ignore(*args) -> None:
    pass


def _reason(source: Source, e: BaseException) -> str:
    message = (str(e) or type(e).__name__).splitlines()[0]
    return message if str(source.path) in message else f"{source.path}: {message}"


def _target(output: Path, format: str, source: Source) -> Path:
    return output / Path(source.name).with_suffix(f".{format}")


def _check_outputs(output: Path, format: str, sources, units, resume: bool, overwrite: bool, process: int) -> None:
    """Without ``resume`` or ``overwrite``, outputs already there are an error. With ``overwrite``, a
    fresh shards run first removes the old shards; with ``resume``, the temporary files a killed run left
    are removed. Process 0 does either while the others wait."""
    if format == "shards":
        old = sorted((output / SHARDS).glob("codes-*")) if (output / SHARDS).is_dir() else []
        old += [p for p in (output / MANIFEST, output / INDEX) if p.exists()]
        if old and not (resume or overwrite):
            raise TokenizeError(f"{output} already holds tokens ({old[0].name}); pass --resume to finish that run "
                                "or --overwrite to replace it")
        if process == 0:
            for path in old if overwrite and not resume else []:
                path.unlink()
            _remove_temporary([output / SHARDS, output] if resume else [])
            (output / SHARDS).mkdir(parents=True, exist_ok=True)
    elif resume:
        if process == 0:
            _remove_temporary(sorted({_target(output, format, sources[u.keys[0]]).parent for u in units}))
    elif not overwrite:
        for unit in units:
            target = _target(output, format, sources[unit.keys[0]])
            if target.exists():
                raise TokenizeError(f"{target} exists (pass --overwrite to replace it or --resume to keep it)")
    barrier("jaxdac-tokenize-start")


def _remove_temporary(folders: list[Path]) -> None:
    """The temporary files of ``atomic_output`` (``.<name>.<hex>.tmp``) that a killed run left behind."""
    for folder in folders:
        for path in folder.glob(".*.tmp") if folder.is_dir() else []:
            path.unlink(missing_ok=True)


def _finished(output: Path, format: str, sources: list[Source], unit: _Unit) -> bool:
    if format != "shards":
        return _target(output, format, sources[unit.keys[0]]).exists()
    marker = _shard_path(output, unit.index, ".json")
    if not marker.exists():
        return False
    planned = json.loads(marker.read_text())["sources"]
    if planned != [sources[k].name for k in unit.keys]:
        raise TokenizeError(f"{marker} was written for other inputs than these; the corpus changed since the "
                            "interrupted run (start again with --overwrite)")
    return True


def _gather(output: Path, summary: Summary, process: int, count: int) -> Summary:
    """Every process's summary, merged on process 0 once all have finished; the others keep their own."""
    output.mkdir(parents=True, exist_ok=True)
    _write_json(output / f".jaxdac-tokenize-{process}.json", dataclasses.asdict(summary))
    barrier("jaxdac-tokenize-done")
    if process != 0:
        return summary
    merged = dataclasses.replace(summary, coded=0, done_before=0, audio_seconds=0.0, skipped=[])
    for p in range(count):
        path = output / f".jaxdac-tokenize-{p}.json"
        part = json.loads(path.read_text())
        path.unlink()
        merged.coded += part["coded"]
        merged.done_before += part["done_before"]
        merged.audio_seconds += part["audio_seconds"]
        merged.skipped += [tuple(s) for s in part["skipped"]]
    return merged


def _write_manifest(model: DAC, output: Path, units: list[_Unit], skipped: list[tuple[str, str]], n_q: int,
                    dtype: str) -> None:
    """``index.npy`` (every shard's rows, in input order) and ``manifest.json``, once every shard is done.
    ``skipped``: the files no shard holds (unreadable headers)."""
    parts, skipped = [], [list(s) for s in skipped]
    for unit in units:
        parts.append(np.load(_shard_path(output, unit.index, ".index.npy")))
        skipped += json.loads(_shard_path(output, unit.index, ".json").read_text())["skipped"]
    width = max([p.dtype["path"].itemsize for p in parts] + [1])
    dtype_index = np.dtype([("path", f"S{width}"), *INDEX_FIELDS])
    index = np.concatenate([p.astype(dtype_index) for p in parts]) if parts else np.zeros(0, dtype_index)
    with atomic_output(output / INDEX, overwrite=True) as f:
        np.save(f, index)
    config = model.config
    _write_json(output / MANIFEST, {
        "format": "jaxdac tokens 1",
        "model": {"sample_rate": config.sample_rate, "hop_length": config.hop_length,
                  "frame_rate": config.sample_rate / config.hop_length, "n_codebooks": config.n_codebooks,
                  "codebook_size": config.codebook_size, "latent_dim": config.latent_dim,
                  "encoder_rates": list(config.encoder_rates), "dtype": dtype},
        "n_codebooks": n_q,
        "codes": {"dtype": _code_dtype(model).name, "layout": "each clip [channels, n_codebooks, frames], C order, "
                  "flattened at index.offset of shards[index.shard]"},
        "index": INDEX,
        "index_fields": ["path", *[name for name, _ in INDEX_FIELDS]],
        "shards": [str(_shard_path(output, u.index, ".npy").relative_to(output)) for u in units],
        "files": int(index.size),
        "audio_seconds": float(np.sum(index["original_length"] / np.maximum(index["sample_rate"], 1))),
        "skipped": [{"path": name, "reason": reason} for name, reason in sorted(skipped)],
    })


# --- reading tokens back ---------------------------------------------------------------------------------------
class Tokens:
    """A tokenized corpus (``format="shards"``): ``tokens[i]`` is clip ``i``'s codes ``[channels,
    n_codebooks, frames]`` (a read-only view of a memory-mapped shard), ``tokens.index`` the structured
    index (``path``, ``shard``, ``offset``, ``channels``, ``frames``, ``sample_rate``,
    ``original_length``, ``input_db``), ``tokens.manifest`` the manifest."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.manifest = json.loads((self.folder / MANIFEST).read_text())
        self.index = np.load(self.folder / self.manifest["index"], mmap_mode="r")
        self.n_codebooks = self.manifest["n_codebooks"]
        self._shards: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return self.index.size

    def __getitem__(self, i: int) -> np.ndarray:
        row = self.index[i]
        shard = int(row["shard"])
        if shard not in self._shards:
            self._shards[shard] = np.load(self.folder / self.manifest["shards"][shard], mmap_mode="r")
        n = int(row["channels"]) * self.n_codebooks * int(row["frames"])
        offset = int(row["offset"])
        return self._shards[shard][offset : offset + n].reshape(int(row["channels"]), self.n_codebooks, -1)

    def paths(self) -> list[str]:
        return [p.decode() for p in self.index["path"]]


def open_tokens(folder: str | os.PathLike) -> Tokens:
    """The tokens :func:`tokenize_files` wrote with ``format="shards"`` into ``folder``."""
    return Tokens(folder)


__all__ = ["FORMATS", "Source", "Summary", "Tokens", "TokenizeError", "compress_clips", "open_tokens",
           "tokenize_files"]
