"""Compress and decompress audio of any length, in memory bounded by the window.

``compress`` resamples to the model rate, measures loudness and normalises it, limits peaks, folds
channels into the batch and codes the signal. ``decompress`` reverses it. Both give the original's codes
and audio for the same weights and input (tests/test_inference.py and tests/parity/).

Two chunkings. ``seamless`` (default) codes fixed windows with enough context on both sides that every
frame equals whole-signal coding (:func:`jaxdac.geometry.seamless_plan`); its files are ordinary
unchunked DAC files. ``legacy`` is the original's scheme: overlapping unpadded windows, codes that depend
on the window size. Every window has one shape, so each chunk function compiles once per window size and
``chunk_batch`` (windows run per call).

The signal flows through both as a stream of blocks, never as a whole: the integrated loudness the
normalisation needs is measured in a first pass (:class:`jaxdac.dsp.LoudnessMeter`) and the input read
again for coding, and the decoded audio is measured while it is spooled to a temporary file, then scaled
and resampled from there. So :func:`compress_file` and :func:`decompress_file` work on files of any length
in memory set by the window (``benchmarks/results/memory_startup.md``), and give exactly the results of
:func:`compress` / :func:`decompress` on the same audio, which run the same code over in-memory blocks.
"""

from __future__ import annotations

import collections
import functools
import math
from typing import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jaxdac import geometry
from jaxdac.dsp import LoudnessMeter, Resampler
from jaxdac.dsp.resample import resampled_length
from jaxdac.io.dacfile import DACFile
from jaxdac.nn.codec import DAC
from jaxdac.nn.precision import cast_for_compute

# Loudness is clamped at -70 LUFS (silence), and gains use exp(dB * ln(10) / 20) as the original does.
GAIN_FACTOR = math.log(10) / 20

# How many times each compiled chunk function has been traced: tests assert one trace per shape.
TRACES: collections.Counter = collections.Counter()


# The chunk functions run on prepared parameters: weight norm folded into every kernel once
# (nn.precision.cast_for_compute) instead of on every chunk and, for dtype="bfloat16", the encoder and decoder
# cast down (the quantizer stays float32, so the codebook search does not see bfloat16 rounding). The last
# few prepared states are kept, keyed on the identity of the parameter arrays (held, so ids stay unique).
_PREPARED: collections.OrderedDict = collections.OrderedDict()
_PREPARED_SLOTS = 2


@functools.partial(jax.jit, static_argnames=("graphdef", "dtype"))
def _prepare_state(graphdef, state, dtype):
    model = nnx.merge(graphdef, state)
    cast_for_compute(model, dtype)
    return nnx.split(model)[1]


def _chunk_state(graphdef, state, dtype: str = "float32"):
    leaves = jax.tree.leaves(state)
    key = (graphdef, dtype, tuple(map(id, leaves)))
    if key not in _PREPARED:
        _PREPARED[key] = (leaves, _prepare_state(graphdef, state, dtype))
        while len(_PREPARED) > _PREPARED_SLOTS:
            _PREPARED.popitem(last=False)
    return _PREPARED[key][1]


def _encode_chunks(graphdef, state, audio, n_quantizers, padded, dtype: str = "float32"):  # [N, 1, W] -> [N, n_q, F]
    return _encode_chunks_prepared(graphdef, _chunk_state(graphdef, state, dtype), audio, n_quantizers, padded, dtype)


def _decode_chunks(graphdef, state, codes, padded, dtype: str = "float32"):  # [N, n_q, F] -> [N, T]
    return _decode_chunks_prepared(graphdef, _chunk_state(graphdef, state, dtype), codes, padded, dtype)


@functools.partial(jax.jit, static_argnames=("graphdef", "n_quantizers", "padded", "dtype"))
def _encode_chunks_prepared(graphdef, state, audio, n_quantizers, padded, dtype, pieces=None):  # -> int32
    # pieces [N, K, 2]: signals packed in each window, coded each as if alone (jaxdac.tokenize).
    TRACES["encode", audio.shape, n_quantizers, padded] += 1
    model = nnx.merge(graphdef, state)
    x = model.preprocess(audio).transpose(0, 2, 1).astype(dtype)
    z = model.encoder(x, padded, pieces).astype(jnp.float32)
    return model.quantizer(z, n_quantizers).codes.astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "padded", "dtype"))
def _decode_chunks_prepared(graphdef, state, codes, padded, dtype):  # -> float32
    TRACES["decode", codes.shape, padded] += 1
    model = nnx.merge(graphdef, state)
    z = model.quantizer.from_codes(codes).z.transpose(0, 2, 1).astype(dtype)
    return model.decoder(z, padded)[..., 0].astype(jnp.float32)


_BLOCK = 1 << 18  # samples per block of the streamed signal (6 s at 44.1 kHz)
_DTYPES = ("float32", "bfloat16")


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="chunk", leave=False)


def _groups(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _check_options(chunk_batch: int, dtype: str) -> None:
    if chunk_batch < 1:
        raise ValueError(f"chunk_batch must be >= 1, got {chunk_batch}")
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")


def _as_batch(audio) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None, None]
    elif audio.ndim == 2:
        audio = audio[None]
    if audio.ndim != 3:
        raise ValueError(f"audio must be [batch, channels, samples], got shape {audio.shape}")
    if audio.shape[-1] == 0:
        raise ValueError("audio is empty (0 samples)")
    return audio


# --- the input side: sources read block by block, loudness measured in a first pass ------------------
class _ArraySource:
    """Audio ``[B, C, T]`` in memory, handed out in blocks like a file."""

    def __init__(self, audio: np.ndarray, sample_rate: int):
        self.audio, self.sample_rate = audio, sample_rate
        self.batch, self.channels, _ = audio.shape

    def blocks(self) -> Iterator[np.ndarray]:
        for start in range(0, self.audio.shape[-1], _BLOCK):
            yield self.audio[..., start : start + _BLOCK]


class _FileSource:
    """An audio file, read in blocks on every pass (one block in memory at a time)."""

    def __init__(self, path):
        from jaxdac.io.audio import audio_info

        info = audio_info(path)  # opens, has samples: AudioFileError otherwise
        self.path, self.sample_rate, self.batch, self.channels = path, info.sample_rate, 1, info.channels

    def blocks(self) -> Iterator[np.ndarray]:
        from jaxdac.io.audio import read_audio_blocks

        for block in read_audio_blocks(self.path, _BLOCK):
            yield block[None]


class _Prepared:
    """What the first pass over a source measured: the input loudness and the gains of the second."""

    def __init__(self, source, model_rate: int, normalize_db: float | None):
        self.source, self.model_rate = source, model_rate
        batch, channels = source.batch, source.channels
        meter = LoudnessMeter(model_rate, batch, channels)
        peak = np.zeros((batch, channels), np.float32)
        self.original_length = self.length = 0
        for x in self._resampled(count=True):
            meter.push(x)
            if x.shape[-1]:
                peak = np.maximum(peak, np.abs(x).max(-1))
            self.length += x.shape[-1]
        if self.original_length == 0:
            raise ValueError("audio is empty (0 samples)")
        self.input_db = np.asarray(meter.result(), np.float32).reshape(batch)
        # Loudness to normalize_db, then each channel's peak limited to 1. The second pass multiplies
        # exactly as a whole-signal pass would: x * gain, then (x * gain) * (1 / peak) where the peak
        # of x * gain is max|x| * gain (rounding is monotonic, so the maximum commutes with it).
        self.gain = None
        if normalize_db is not None:
            self.gain = np.exp(np.float32(normalize_db - self.input_db) * np.float32(GAIN_FACTOR)).astype(np.float32)
            peak = (peak * self.gain[:, None]).astype(np.float32)
        self.limited = peak > 1.0
        self.limit = (np.float32(1.0) / np.maximum(peak, np.float32(1.0))).astype(np.float32)

    def _resampled(self, count: bool = False) -> Iterator[np.ndarray]:
        rate = self.source.sample_rate
        resampler = None if rate == self.model_rate else Resampler(rate, self.model_rate)
        for block in self.source.blocks():
            block = np.asarray(block, np.float32)
            if count:
                self.original_length += block.shape[-1]
            yield block if resampler is None else resampler.push(block)
        if resampler is not None:
            yield resampler.flush()

    def dac_file(self, codes: np.ndarray, chunk_length: int, padding: bool) -> DACFile:
        """The DAC file of ``codes [B*C, n_q, frames]``, coded from this source's :meth:`blocks`."""
        return DACFile(
            codes=codes,
            chunk_length=chunk_length,
            original_length=self.original_length,
            input_db=self.input_db,
            channels=self.source.channels,
            sample_rate=self.source.sample_rate,
            padding=padding,
        )

    def blocks(self) -> Iterator[np.ndarray]:
        """Second pass: the model input ``[B*C, 1, b]`` block by block, ``self.length`` samples in all."""
        for x in self._resampled():
            if x.shape[-1] == 0:
                continue
            x = np.array(x, np.float32)  # our own buffer, scaled in place
            if self.gain is not None:
                x *= self.gain[:, None, None]
            for b, c in zip(*np.nonzero(self.limited)):
                x[b, c] *= self.limit[b, c]
            yield x.reshape(-1, 1, x.shape[-1])


class _Window:
    """A sliding view of a block stream ``[rows, ..., b]``: ``take(a, b)`` returns items ``[a, b)`` of the
    stream followed by zeros. Only what lies at or after the last ``release`` point stays in memory."""

    def __init__(self, blocks: Iterator[np.ndarray], prefix: int = 0):
        self.blocks, self.prefix = blocks, prefix  # `prefix` zeros come before the stream
        self.buffer: np.ndarray | None = None
        self.offset = 0  # stream position of buffer[..., 0]

    def _pull(self) -> bool:
        block = next(self.blocks, None) if self.blocks is not None else None
        if block is None:
            self.blocks = None
            return False
        if self.buffer is None:
            self.buffer = np.zeros((*block.shape[:-1], self.prefix), block.dtype)
        self.buffer = np.concatenate([self.buffer, block], axis=-1)
        return True

    def take(self, a: int, b: int) -> np.ndarray:
        while (self.buffer is None or self.offset + self.buffer.shape[-1] < b) and self._pull():
            pass
        if self.buffer is None:
            raise ValueError("no input")
        assert a >= self.offset, (a, self.offset)
        piece = self.buffer[..., a - self.offset : b - self.offset]
        missing = (b - a) - piece.shape[-1]
        return np.pad(piece, [(0, 0)] * (piece.ndim - 1) + [(0, missing)]) if missing else piece

    def release(self, before: int) -> None:
        drop = before - self.offset
        if drop > 0 and self.buffer is not None:
            self.buffer = self.buffer[..., drop:]
            self.offset = before


def _run_windows(fn, source: _Window, plan, length: int, chunk_batch: int, progress: bool, desc: str):
    """Run ``fn`` on windows ``source.take(start, start + length)`` in groups of ``chunk_batch`` (the last
    group padded with repeats, so one compiled shape serves all) and yield each window's output frames
    ``[keep_from, keep_to)`` in order. ``plan`` holds ``(start, keep_from, keep_to)`` with ascending
    starts; ``keep_to=None`` keeps everything from ``keep_from``."""
    groups = list(_groups(plan, chunk_batch))
    for group in _progress(groups, len(groups), progress, desc):
        padded = group + [group[-1]] * (chunk_batch - len(group))
        batch = np.concatenate([source.take(start, start + length) for start, _, _ in padded])
        source.release(group[-1][0])  # later windows start here or after
        out = np.asarray(fn(jnp.asarray(batch)))
        rows = batch.shape[0] // chunk_batch
        for j, (_, a, b) in enumerate(group):
            yield out[j * rows : (j + 1) * rows, ..., a:b]


def _window_frames(model: DAC, win_duration: float | None, total: int) -> int:
    if win_duration is None:
        return total
    if win_duration <= 0:
        raise ValueError(f"win_duration must be positive, got {win_duration}")
    return max(1, round(win_duration * model.sample_rate / model.hop_length))


def _legacy_plan(model: DAC, n: int, win_duration: float) -> tuple[int, int]:
    window, step = geometry.chunk_plan(model.config, n, win_duration)
    if step <= 0:
        shortest = (2 * model.delay + model.hop_length) / model.sample_rate
        raise ValueError(f"win_duration {win_duration} s is shorter than this model's context; use at least {shortest:.2f} s")
    return window, step


def _encode_blocks(model, blocks, n, win_duration, n_quantizers, chunking, chunk_batch, dtype, progress):
    """Code the model input ``blocks`` (``[rows, 1, b]``, ``n`` samples in all):
    ``(codes [rows, n_q, frames], chunk_length, padding)``."""
    graphdef, state = nnx.split(model)
    fn = functools.partial(_encode_chunks, graphdef, state, n_quantizers=n_quantizers, dtype=dtype)
    hop = model.hop_length
    if chunking == "legacy" and win_duration is not None and n / model.sample_rate > win_duration:
        # The original's chunks: windows every `step` samples over the input with `delay` zeros on both
        # sides, unpadded convolutions, every output frame kept; the last window is zero-filled.
        window, step = _legacy_plan(model, n, win_duration)
        plan = [(s, 0, None) for s in range(0, n, step)]
        run = _run_windows(functools.partial(fn, padded=False), _Window(blocks, prefix=model.delay), plan, window,
                           chunk_batch, progress, "compress")
        pieces = list(run)
        return np.concatenate(pieces, axis=-1), pieces[0].shape[-1], False
    # Seamless windows; legacy below its window is the original's unchunked path, which is one window.
    total = geometry.padded_input_length(model.config, n) // hop
    window = total if chunking == "legacy" else _window_frames(model, win_duration, total)
    length, segments = geometry.seamless_plan(total, window, geometry.encoder_context(model.config))
    plan = [(seg.start * hop, seg.keep_start - seg.start, seg.keep_stop - seg.start) for seg in segments]
    run = _run_windows(functools.partial(fn, padded=True), _Window(blocks), plan, length * hop, chunk_batch,
                       progress, "compress")
    return np.concatenate(list(run), axis=-1), total, True


def prepare(model: DAC, audio: np.ndarray, sample_rate: int, normalize_db: float | None = -16.0):
    """The model input compress codes: ``audio [B, C, T]`` resampled to the model rate, loudness
    normalised to ``normalize_db`` LUFS, peaks limited to 1 per channel, channels folded into the batch.
    Returns ``(x [B*C, 1, T'], input_db [B])`` (whole, in memory: for tests and inspection)."""
    prepared = _Prepared(_ArraySource(_as_batch(audio), sample_rate), model.sample_rate, normalize_db)
    return np.concatenate(list(prepared.blocks()), axis=-1), prepared.input_db


def _compress_source(model, source, win_duration, n_quantizers, normalize_db, chunking, chunk_batch, dtype, progress):
    _check_options(chunk_batch, dtype)
    if chunking not in ("seamless", "legacy"):
        raise ValueError(f"chunking must be 'seamless' or 'legacy', got {chunking!r}")
    if win_duration is not None and win_duration <= 0:
        raise ValueError(f"win_duration must be positive, got {win_duration}")
    prepared = _Prepared(source, model.sample_rate, normalize_db)
    codes, chunk_length, padding = _encode_blocks(
        model, prepared.blocks(), prepared.length, win_duration, n_quantizers, chunking, chunk_batch, dtype, progress
    )
    return prepared.dac_file(codes, chunk_length, padding)


def compress(
    model: DAC,
    audio,
    sample_rate: int,
    win_duration: float | None = 1.0,
    n_quantizers: int | None = None,
    normalize_db: float | None = -16.0,
    *,
    chunking: str = "seamless",
    chunk_batch: int = 1,
    dtype: str = "float32",
    progress: bool = False,
) -> DACFile:
    """Compress ``audio`` ``[B, C, T]`` (or ``[C, T]``, ``[T]``) at ``sample_rate`` into a :class:`DACFile`.

    ``win_duration`` seconds per window (``None``: the whole signal at once). ``n_quantizers`` keeps the
    first N codebooks. ``chunk_batch`` windows run per compiled call (same codes, more throughput).
    ``dtype="bfloat16"`` runs the encoder in bfloat16 (the codebook search stays float32): faster where
    the hardware has fast bfloat16, at a measured cost in code agreement (``benchmarks/README.md``).

    ``chunking="seamless"`` (default) codes each window with enough context on both sides that the
    codes equal whole-file coding, whatever the window, and writes an ordinary unchunked file at the
    nominal frame rate. ``chunking="legacy"`` is the original's scheme: overlapping unpadded windows,
    codes that depend on the window size, byte-compatible with the original's chunked files.
    """
    source = _ArraySource(_as_batch(audio), sample_rate)
    return _compress_source(model, source, win_duration, n_quantizers, normalize_db, chunking, chunk_batch, dtype, progress)


def compress_file(
    model: DAC,
    path,
    win_duration: float | None = 1.0,
    n_quantizers: int | None = None,
    normalize_db: float | None = -16.0,
    *,
    chunking: str = "seamless",
    chunk_batch: int = 1,
    dtype: str = "float32",
    progress: bool = False,
) -> DACFile:
    """:func:`compress` an audio file, reading it in blocks: memory is set by the window, not the file's
    length (the file is read twice, once to measure its loudness). The codes are those :func:`compress`
    gives for the file's samples. Raises :class:`jaxdac.io.audio.AudioFileError` for unreadable files."""
    source = _FileSource(path)
    return _compress_source(model, source, win_duration, n_quantizers, normalize_db, chunking, chunk_batch, dtype, progress)


# --- the output side: decode in windows, measure while spooling, then scale and resample ---------------
def _decode_blocks(model, codes, padding, chunk_length, win_duration, chunk_batch, dtype, progress) -> Iterator[np.ndarray]:
    """Audio ``[rows, b]`` at the model rate, block by block, of ``codes [rows, n_q, frames]``."""
    graphdef, state = nnx.split(model)
    fn = functools.partial(_decode_chunks, graphdef, state, padded=padding, dtype=dtype)
    frames = codes.shape[-1]
    blocks = iter([codes])
    if not padding:  # the original's chunks, decoded one by one and joined
        plan = [(s, 0, None) for s in range(0, frames, chunk_length)]
        yield from _run_windows(fn, _Window(blocks), plan, chunk_length, chunk_batch, progress, "decompress")
        return
    hop = model.hop_length
    out_length = geometry.decoded_length(model.config, frames)
    window = _window_frames(model, win_duration, frames)
    length, segments = geometry.seamless_plan(frames, window, geometry.decoder_context(model.config))
    plan = [(s.start, (s.keep_start - s.start) * hop, min(s.keep_stop * hop, out_length) - s.start * hop) for s in segments]
    yield from _run_windows(fn, _Window(blocks), plan, length, chunk_batch, progress, "decompress")


class _Spool:
    """Blocks ``[rows, b]`` kept for a second pass: in memory, or in a temporary file in ``folder``
    (deleted when closed) so that memory stays bounded."""

    def __init__(self, folder=None):
        import tempfile

        self.file = None if folder is None else tempfile.TemporaryFile(dir=folder, prefix=".jaxdac-spool-")
        self.blocks: list[np.ndarray] = []
        self.sizes: list[int] = []

    def write(self, block: np.ndarray) -> None:
        if self.file is None:
            self.blocks.append(block)
        else:
            self.file.write(np.ascontiguousarray(block, np.float32).tobytes())
            self.sizes.append(block.shape[-1])
            self.rows = block.shape[0]

    def read(self) -> Iterator[np.ndarray]:
        if self.file is None:
            yield from self.blocks
            return
        self.file.seek(0)
        for size in self.sizes:
            data = np.frombuffer(self.file.read(4 * self.rows * size), np.float32)
            yield data.reshape(self.rows, size).copy()

    def close(self) -> None:
        self.blocks = []
        if self.file is not None:
            self.file.close()


def _restore(model, dac_file: DACFile, blocks: Iterator[np.ndarray], spool: _Spool) -> Iterator[np.ndarray]:
    """The decoded ``blocks`` back at the input's loudness and rate: ``[rows, b]`` blocks adding up to
    exactly ``original_length`` samples. Loudness is measured per coded row, as the original does."""
    sr = model.sample_rate
    rows = dac_file.codes.shape[0]
    meter = LoudnessMeter(sr, rows, 1)
    for block in blocks:
        meter.push(block[:, None])
        spool.write(block)
    input_db = np.asarray(dac_file.input_db, np.float32).reshape(-1)
    if input_db.size != rows:
        input_db = np.repeat(input_db, rows // input_db.size)
    gain = np.exp((input_db - np.asarray(meter.result(), np.float32)) * np.float32(GAIN_FACTOR)).astype(np.float32)
    resampler = None if dac_file.sample_rate == sr else Resampler(sr, dac_file.sample_rate)
    left = dac_file.original_length

    def cut(y):
        nonlocal left
        y = y[:, :left]
        left -= y.shape[-1]
        return y

    for block in spool.read():
        block = block * gain[:, None]
        y = cut(block if resampler is None else resampler.push(block))
        if y.shape[-1]:
            yield y
    if resampler is not None:
        y = cut(resampler.flush())
        if y.shape[-1]:
            yield y
    if left > 0:
        # The 2,4,5,8 stride family decodes 8 samples fewer than the encoder consumed; the missing
        # tail (< 0.5 ms) is zeros instead of the original's crash.
        yield np.zeros((rows, left), np.float32)


def _decompress_blocks(model, dac_file, win_duration, chunk_batch, dtype, progress, spool):
    _check_options(chunk_batch, dtype)
    dac_file.validate_for(model.config)
    codes = np.asarray(dac_file.codes, np.int32)
    # A corrupt or foreign original_length must not turn into an endless run of zeros: the codes decode
    # to a known length, and only the stride-5 models' 8-sample shortfall may be filled.
    frames = codes.shape[-1]
    if dac_file.padding:
        decoded = geometry.decoded_length(model.config, frames)
    else:
        chunks = -(-frames // dac_file.chunk_length)
        decoded = chunks * geometry.decoded_length(model.config, dac_file.chunk_length, padded=False)
    available = resampled_length(decoded, model.sample_rate, dac_file.sample_rate)
    slack = resampled_length(model.hop_length, model.sample_rate, dac_file.sample_rate) + 1
    if dac_file.original_length > available + slack:
        raise ValueError(
            f"the DAC file claims {dac_file.original_length} samples but its codes decode to about {available}; "
            "it is corrupt or was written for another model"
        )
    blocks = _decode_blocks(model, codes, dac_file.padding, dac_file.chunk_length, win_duration, chunk_batch, dtype,
                            progress)
    return _restore(model, dac_file, blocks, spool)


def decompress(
    model: DAC,
    dac_file: DACFile,
    *,
    win_duration: float | None = 5.0,
    chunk_batch: int = 1,
    dtype: str = "float32",
    progress: bool = False,
) -> np.ndarray:
    """Decode a :class:`DACFile` back to audio ``[B, C, original_length]`` at the file's sample rate.

    Unchunked (padded) files, ours or the original's, are decoded seamlessly in windows of
    ``win_duration`` seconds with context on both sides: equal to decoding the whole file at once
    (``None``: all at once). Chunked files decode chunk by chunk, as the original. ``dtype`` as for
    :func:`compress`.

    For the 2,4,5,8 stride family the padded decoder yields 8 samples fewer than the encoder consumed;
    the missing tail (at most 8 samples, < 0.5 ms) is filled with zeros instead of failing as the
    original does.
    """
    spool = _Spool()
    try:
        blocks = list(_decompress_blocks(model, dac_file, win_duration, chunk_batch, dtype, progress, spool))
    finally:
        spool.close()
    y = np.concatenate(blocks, axis=-1)
    return y.reshape(-1, dac_file.channels, dac_file.original_length)


def decompress_file(
    model: DAC,
    dac_file: DACFile,
    path,
    *,
    format: str | None = None,
    subtype: str | None = None,
    overwrite: bool = False,
    win_duration: float | None = 5.0,
    chunk_batch: int = 1,
    dtype: str = "float32",
    progress: bool = False,
):
    """:func:`decompress` ``dac_file`` (one item) straight into the audio file ``path``, in memory set by
    the window: the decoded audio is spooled to a temporary file beside ``path`` while its loudness is
    measured, then scaled, resampled and written block by block. ``path`` appears only when complete;
    ``format`` / ``subtype`` / ``overwrite`` as for :func:`jaxdac.io.audio.write_audio`. Returns ``path``."""
    from pathlib import Path

    from jaxdac.io.audio import AudioWriter

    path = Path(path)
    if dac_file.batch_size != 1:
        raise ValueError(f"decompress_file writes one item; this DAC file holds {dac_file.batch_size}")
    writer = AudioWriter(path, dac_file.sample_rate, dac_file.channels, format=format, subtype=subtype,
                         overwrite=overwrite)
    spool = _Spool(path.parent)
    try:
        blocks = _decompress_blocks(model, dac_file, win_duration, chunk_batch, dtype, progress, spool)
        with writer:
            for block in blocks:
                writer.write(block)
    finally:
        spool.close()
    return path


# Whole-array forms of the seamless plans, for tests and benchmarks.
def _encode_seamless(model, x, win_duration, n_quantizers=None, chunk_batch=1, progress=False) -> np.ndarray:
    """Codes of the model input ``x [N, 1, T]`` in seamless windows: equal to whole-signal ``encode``."""
    blocks = (x[..., i : i + _BLOCK] for i in range(0, x.shape[-1], _BLOCK))
    return _encode_blocks(model, blocks, x.shape[-1], win_duration, n_quantizers, "seamless", chunk_batch,
                          "float32", progress)[0]


def _decode_seamless(model, codes, win_duration, chunk_batch=1, progress=False) -> np.ndarray:
    """Audio ``[N, T]`` of the whole padded code sequence, decoded window by window with context."""
    return np.concatenate(list(_decode_blocks(model, codes, True, None, win_duration, chunk_batch, "float32", progress)), -1)
