"""Compress and decompress audio of any length: the original's chunked algorithm over fixed-shape,
compiled chunk functions.

``compress`` resamples to the model rate, measures loudness and normalises it, limits peaks, folds
channels into the batch and codes the signal either whole (padded convolutions; audio no longer than
the window) or in fixed windows (unpadded convolutions, windows overlapping so that each yields
``chunk_length`` frames of new codes). ``decompress`` reverses it. Both give the original's codes and
audio for the same weights and input (see tests/test_inference.py and tests/parity/).

Every chunk has the same shape (the last one is zero-padded, as in the original), so each chunk
function compiles once per window size and ``chunk_batch``; ``chunk_batch`` chunks run as one batch.
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
from jaxdac.io.dacfile import DACFile
from jaxdac.nn.codec import DAC
from jaxdac.nn.layers import Snake, fold_weight_norm

# Loudness is clamped at -70 LUFS (silence), and gains use exp(dB * ln(10) / 20) as the original does.
GAIN_FACTOR = math.log(10) / 20

# How many times each compiled chunk function has been traced: tests assert one trace per shape.
TRACES: collections.Counter = collections.Counter()


# The chunk functions run on prepared parameters: weight norm folded into every kernel once
# (nn.layers.fold_weight_norm) instead of on every chunk and, for dtype="bfloat16", the encoder and decoder
# cast down (the quantizer stays float32, so the codebook search does not see bfloat16 rounding). The last
# few prepared states are kept, keyed on the identity of the parameter arrays (held, so ids stay unique).
_PREPARED: collections.OrderedDict = collections.OrderedDict()
_PREPARED_SLOTS = 2


@functools.partial(jax.jit, static_argnames=("graphdef", "dtype"))
def _prepare_state(graphdef, state, dtype):
    model = nnx.merge(graphdef, state)
    low = None if dtype == "float32" else jnp.dtype(dtype)
    fold_weight_norm(model.encoder, low)
    fold_weight_norm(model.quantizer)
    fold_weight_norm(model.decoder, low)
    if low is not None:
        for _, snake in nnx.iter_graph(model):
            if isinstance(snake, Snake):
                snake.alpha.set_value(snake.alpha[...].astype(low))
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
def _encode_chunks_prepared(graphdef, state, audio, n_quantizers, padded, dtype):  # -> int32
    TRACES["encode", audio.shape, n_quantizers, padded] += 1
    model = nnx.merge(graphdef, state)
    x = model.preprocess(audio).transpose(0, 2, 1).astype(dtype)
    z = model.encoder(x, padded).astype(jnp.float32)
    return model.quantizer(z, n_quantizers).codes.astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("graphdef", "padded", "dtype"))
def _decode_chunks_prepared(graphdef, state, codes, padded, dtype):  # -> float32
    TRACES["decode", codes.shape, padded] += 1
    model = nnx.merge(graphdef, state)
    z = model.quantizer.from_codes(codes).z.transpose(0, 2, 1).astype(dtype)
    return model.decoder(z, padded)[..., 0].astype(jnp.float32)


def _progress(iterable, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="chunk", leave=False)


def _groups(starts: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(starts), size):
        yield starts[i : i + size]


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


def prepare(model: DAC, audio: np.ndarray, sample_rate: int, normalize_db: float | None = -16.0):
    """The model input compress codes: ``audio [B, C, T]`` resampled to the model rate, loudness
    normalised to ``normalize_db`` LUFS, peaks limited to 1 per channel, channels folded into the batch.
    Returns ``(x [B*C, 1, T'], input_db [B])``."""
    from jaxdac.dsp import loudness, resample

    batch, channels, _ = audio.shape
    sr = model.sample_rate
    x = audio if sample_rate == sr else np.asarray(resample(jnp.asarray(audio), sample_rate, sr))
    input_db = np.asarray(loudness(jnp.asarray(x), sr), np.float32).reshape(batch)
    x = np.array(x, np.float32)  # one working copy, scaled in place below
    if normalize_db is not None:
        gain = np.exp(np.float32(normalize_db - input_db) * np.float32(GAIN_FACTOR)).astype(np.float32)
        x *= gain[:, None, None]
    # Limit peaks to 1 per channel, row by row to avoid full-length temporaries.
    for b in range(batch):
        for c in range(channels):
            peak = float(np.max(np.abs(x[b, c]))) if x.shape[-1] else 0.0
            if peak > 1.0:
                x[b, c] *= np.float32(1.0) / np.float32(peak)
    return x.reshape(batch * channels, 1, -1), input_db


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
    progress: bool = False,
) -> DACFile:
    """Compress ``audio`` ``[B, C, T]`` (or ``[C, T]``, ``[T]``) at ``sample_rate`` into a :class:`DACFile`.

    ``win_duration`` seconds per window (``None``: the whole signal at once). ``n_quantizers`` keeps the
    first N codebooks. ``chunk_batch`` windows run per compiled call (same codes, more throughput).

    ``chunking="seamless"`` (default) codes each window with enough context on both sides that the
    codes equal whole-file coding, whatever the window, and writes an ordinary unchunked file at the
    nominal frame rate. ``chunking="legacy"`` is the original's scheme: overlapping unpadded windows,
    codes that depend on the window size, byte-compatible with the original's chunked files.
    """
    if chunk_batch < 1:
        raise ValueError(f"chunk_batch must be >= 1, got {chunk_batch}")
    if chunking not in ("seamless", "legacy"):
        raise ValueError(f"chunking must be 'seamless' or 'legacy', got {chunking!r}")
    audio = _as_batch(audio)
    batch, channels, original_length = audio.shape
    graphdef, state = nnx.split(model)
    sr = model.sample_rate

    x, input_db = prepare(model, audio, sample_rate, normalize_db)
    n = x.shape[-1]

    duration = n / sr
    if chunking == "seamless":
        codes = _encode_seamless(graphdef, state, model, x, win_duration, n_quantizers, chunk_batch, progress)
        chunk_length, padding = codes.shape[-1], True
    elif win_duration is None or duration <= win_duration:
        # Whole signal, padded convolutions (the original's unchunked path).
        codes = np.asarray(_encode_chunks(graphdef, state, jnp.asarray(x), n_quantizers, True))
        chunk_length, padding = codes.shape[-1], True
    else:
        window, hop = geometry.chunk_plan(model.config, n, win_duration)
        if hop <= 0:
            shortest = (2 * model.delay + model.hop_length) / sr
            raise ValueError(
                f"win_duration {win_duration} s is shorter than this model's context; use at least {shortest:.2f} s"
            )
        delay = model.delay
        x = np.pad(x, ((0, 0), (0, 0), (delay, delay)))
        starts = list(range(0, n, hop))
        rows = batch * channels
        pieces = []
        groups = _groups(starts, chunk_batch)
        for group in _progress(groups, math.ceil(len(starts) / chunk_batch), progress, "compress"):
            chunk = np.zeros((chunk_batch, rows, 1, window), np.float32)
            for j, s in enumerate(group):
                piece = x[..., s : s + window]
                chunk[j, ..., : piece.shape[-1]] = piece
            out = _encode_chunks(graphdef, state, jnp.asarray(chunk.reshape(-1, 1, window)), n_quantizers, False)
            out = np.asarray(out).reshape(chunk_batch, rows, *out.shape[1:])[: len(group)]
            pieces.extend(out)
        codes = np.concatenate(pieces, axis=-1)
        chunk_length, padding = pieces[0].shape[-1], False

    return DACFile(
        codes=codes,
        chunk_length=chunk_length,
        original_length=original_length,
        input_db=input_db,
        channels=channels,
        sample_rate=sample_rate,
        padding=padding,
    )


def decompress(
    model: DAC, dac_file: DACFile, *, win_duration: float | None = 5.0, chunk_batch: int = 1, progress: bool = False
) -> np.ndarray:
    """Decode a :class:`DACFile` back to audio ``[B, C, original_length]`` at the file's sample rate.

    Unchunked (padded) files, ours or the original's, are decoded seamlessly in windows of
    ``win_duration`` seconds with context on both sides: equal to decoding the whole file at once, in
    memory bounded by the window (``None``: all at once). Chunked files decode chunk by chunk, as the
    original.

    For the 2,4,5,8 stride family the padded decoder yields 8 samples fewer than the encoder consumed;
    the missing tail (at most 8 samples, < 0.5 ms) is filled with zeros instead of failing as the
    original does.
    """
    from jaxdac.dsp import loudness, resample

    if chunk_batch < 1:
        raise ValueError(f"chunk_batch must be >= 1, got {chunk_batch}")
    dac_file.validate_for(model.config)
    graphdef, state = nnx.split(model)
    codes = np.asarray(dac_file.codes, np.int32)
    rows, _, frames = codes.shape
    sr = model.sample_rate

    if dac_file.padding:
        y = _decode_seamless(graphdef, state, model, codes, win_duration, chunk_batch, progress)
    else:
        length = dac_file.chunk_length
        starts = list(range(0, frames, length))
        pieces = []
        for group in _progress(_groups(starts, chunk_batch), math.ceil(len(starts) / chunk_batch), progress, "decompress"):
            chunk = np.zeros((chunk_batch, rows, codes.shape[1], length), np.int32)
            for j, s in enumerate(group):
                piece = codes[..., s : s + length]
                chunk[j, ..., : piece.shape[-1]] = piece
            out = _decode_chunks(graphdef, state, jnp.asarray(chunk.reshape(-1, *chunk.shape[2:])), False)
            pieces.extend(np.asarray(out).reshape(chunk_batch, rows, -1)[: len(group)])
        y = np.concatenate(pieces, axis=-1)

    # Restore the input loudness (measured per coded row, like the original), then the input rate.
    input_db = np.asarray(dac_file.input_db, np.float32).reshape(-1)
    if input_db.size != rows:
        input_db = np.repeat(input_db, rows // input_db.size)
    y = y[:, None, :]
    gain = np.exp((input_db - np.asarray(loudness(jnp.asarray(y), sr), np.float32)) * np.float32(GAIN_FACTOR))
    y *= gain.astype(np.float32)[:, None, None]  # y is our own float32 buffer: scale in place
    if dac_file.sample_rate != sr:
        y = np.asarray(resample(jnp.asarray(y), sr, dac_file.sample_rate))
    y = y[..., : dac_file.original_length]
    if y.shape[-1] < dac_file.original_length:
        y = np.pad(y, ((0, 0), (0, 0), (0, dac_file.original_length - y.shape[-1])))
    return y.reshape(-1, dac_file.channels, dac_file.original_length)


def _window_frames(model: DAC, win_duration: float | None, total: int) -> int:
    if win_duration is None:
        return total
    if win_duration <= 0:
        raise ValueError(f"win_duration must be positive, got {win_duration}")
    return max(1, round(win_duration * model.sample_rate / model.hop_length))


def _run_segments(fn, source: np.ndarray, scale: int, length: int, segments, chunk_batch: int, progress: bool, desc: str):
    """Run ``fn`` on fixed-length slices ``source[..., start*scale : (start+length)*scale]`` in groups of
    ``chunk_batch`` (the last group padded with repeats, so one compiled shape serves all) and yield
    ``(segment, output rows)``."""
    rows = source.shape[0]
    groups = list(_groups(segments, chunk_batch))
    for group in _progress(groups, len(groups), progress, desc):
        padded = group + [group[-1]] * (chunk_batch - len(group))
        batch = np.concatenate([source[..., seg.start * scale : (seg.start + length) * scale] for seg in padded])
        out = np.asarray(fn(jnp.asarray(batch)))
        for j, seg in enumerate(group):
            yield seg, out[j * rows : (j + 1) * rows]


def _encode_seamless(graphdef, state, model, x, win_duration, n_quantizers, chunk_batch, progress) -> np.ndarray:
    """Codes of the whole padded signal ``x [N, 1, T]``, computed window by window (see
    :func:`jaxdac.geometry.seamless_plan`): frames equal whole-signal ``encode`` up to float rounding."""
    hop = model.hop_length
    total = geometry.padded_input_length(model.config, x.shape[-1]) // hop
    x = np.pad(x, ((0, 0), (0, 0), (0, total * hop - x.shape[-1])))
    window = _window_frames(model, win_duration, total)
    length, segments = geometry.seamless_plan(total, window, geometry.encoder_context(model.config))
    fn = functools.partial(_encode_chunks, graphdef, state, n_quantizers=n_quantizers, padded=True)
    codes = None
    for seg, out in _run_segments(fn, x, hop, length, segments, chunk_batch, progress, "compress"):
        if codes is None:
            codes = np.empty((x.shape[0], out.shape[1], total), np.int32)
        codes[..., seg.keep_start : seg.keep_stop] = out[..., seg.keep_start - seg.start : seg.keep_stop - seg.start]
    return codes


def _decode_seamless(graphdef, state, model, codes, win_duration, chunk_batch, progress) -> np.ndarray:
    """Audio ``[N, T]`` of the whole padded code sequence, decoded window by window with context."""
    hop = model.hop_length
    total = codes.shape[-1]
    out_length = geometry.decoded_length(model.config, total)
    window = _window_frames(model, win_duration, total)
    length, segments = geometry.seamless_plan(total, window, geometry.decoder_context(model.config))
    fn = functools.partial(_decode_chunks, graphdef, state, padded=True)
    y = np.empty((codes.shape[0], out_length), np.float32)
    for seg, out in _run_segments(fn, codes, 1, length, segments, chunk_batch, progress, "decompress"):
        a, b = seg.keep_start * hop, min(seg.keep_stop * hop, out_length)
        y[:, a:b] = out[:, a - seg.start * hop : b - seg.start * hop]
    return y
