"""Streaming encode and decode in real time: every layer keeps what its next outputs read, so each new
frame costs one frame of compute, and the results equal coding the whole signal at once.

The functional core is a pair of pytrees, :class:`EncoderStream` and :class:`DecoderStream` (the model's
prepared parameters), each with ``init(batch) -> state`` and a jitted ``step(state, piece) -> (state,
out)`` on fixed-size pieces of ``window_frames`` frames: ``state`` is an explicit pytree (every layer's
kept inputs, and per stream the pieces pushed and, once known, the signal's length), so the step can be
jitted inside a larger program, run on a batch of independent streams, or scanned over a sequence of
pieces (``jax.lax.scan(stream.step, state, pieces)``). How each layer runs on blocks is
``geometry.stream_step``; the layers themselves are ``nn.codec``'s ``stream`` methods.

:class:`StreamingEncoder` and :class:`StreamingDecoder` wrap them for pieces of any size (``push``) and
the end of the signal (``flush``).

Exactness: every output position is computed from the same inputs as in whole-signal coding, positions
outside the signal being zero as the padding is; the codes equal :meth:`jaxdac.DAC.encode`'s and the
audio :meth:`~jaxdac.DAC.decode`'s to float rounding (tests/test_streaming.py).

Latency, with pieces of ``W`` frames (``hop`` samples each): the encoder's stack runs ``R`` frames behind
its input, ``R`` = 8 for every released model, its right context; a code frame comes out at most
``(W + R) hop`` samples after its first sample arrived (4608 samples, 104 ms, at 44.1 kHz with ``W = 1``:
:attr:`StreamingEncoder.latency_samples`). The decoder's stack runs ``D`` samples behind its input (4757
at 44.1 kHz, 3141 at 24 and 16 kHz): audio sample ``t`` comes out with the piece that holds code frame
``(t + D) // hop``, at most ``ceil(D / hop) + W - 1`` frames after the frame it belongs to was pushed
(:attr:`StreamingDecoder.latency_frames`: 10 at 44.1 kHz with ``W = 1``). Streams work on model-rate
audio: integrated loudness needs the whole signal, so normalising is left to the caller;
``jaxdac.dsp.Resampler`` and ``jaxdac.dsp.LoudnessMeter`` resample and measure incrementally.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx, struct

from jaxdac import geometry, inference
from jaxdac.config import DACConfig
from jaxdac.nn.codec import DAC, Position
from jaxdac.nn.layers import store_out_major

__all__ = ["StreamState", "CodeBlock", "AudioBlock", "EncoderStream", "DecoderStream", "StreamingEncoder",
           "StreamingDecoder", "LiveRun", "live"]

_UNKNOWN = -1  # a stream's length while its end has not been pushed


@struct.dataclass
class StreamState:
    """What a stream carries from one piece to the next.

    ``layers``: every layer's kept inputs (a pytree of ``[B, k, C]`` arrays); ``step [B]``: pieces pushed;
    ``total [B]``: the signal's length (samples for the encoder, frames for the decoder) once its end has
    been pushed, else -1.
    """

    layers: Any
    step: jax.Array
    total: jax.Array

    def ended(self, total) -> "StreamState":
        """The same state, told that the signal has ``total`` samples (encoder) or frames (decoder): pieces
        pushed from now on are padding (push zeros), and positions beyond the end are zero at every layer."""
        return self.replace(total=jnp.broadcast_to(jnp.asarray(total, jnp.int32), self.total.shape))


@struct.dataclass
class CodeBlock:
    """A piece of the encoder's output: ``codes [B, n_q, W]`` for frames ``first [B]`` .. ``first + W - 1``.
    Frames before 0 (the first ``lag`` of a stream) and from the signal's frame count on are not codes."""

    codes: jax.Array
    first: jax.Array


@struct.dataclass
class AudioBlock:
    """A piece of the decoder's output: ``audio [B, 1, W hop]`` for samples ``first [B]`` onwards. Samples
    before 0 (the first ``lag``) and from the decoded length on are not audio."""

    audio: jax.Array
    first: jax.Array


# Convolutions with this many input channels or more run as out-major matmuls in a stream (see
# jaxdac.nn.layers.store_out_major): in the 44.1 kHz model the encoder's last two blocks and output conv
# and the decoder's stem and first two blocks, where one frame means 1-64 outputs of 0.3-11 M weights.
_OUT_MAJOR_CHANNELS = 256


# Prepared parameters of the last few models, keyed as jaxdac.inference keys its chunk states (the
# parameter arrays are held, so their ids stay unique): an encoder and a decoder stream of one model, or
# a stream built again, share one preparation.
_PREPARED: collections.OrderedDict = collections.OrderedDict()
_PREPARED_SLOTS = 2


def _prepare(model: DAC, dtype: str):
    """The model's graph and parameters as the streams run them: weight norm folded into the kernels (and
    cast for bfloat16) as ``jaxdac.inference``'s chunk functions have them, done once per model, then the
    wide layers' kernels stored out-major (:func:`jaxdac.nn.layers.store_out_major`)."""
    if dtype not in ("float32", "bfloat16"):
        raise ValueError(f"dtype must be float32 or bfloat16, got {dtype!r}")
    if not isinstance(model, DAC):
        raise TypeError(f"a stream needs a jaxdac DAC, got {type(model).__name__}")
    graphdef, params = nnx.split(model)
    leaves = jax.tree.leaves(params)
    key = (graphdef, dtype, _OUT_MAJOR_CHANNELS, tuple(map(id, leaves)))
    if key not in _PREPARED:
        traced = []  # the prepared graph: which layers are out-major is static, known at trace time

        @jax.jit
        def out_major(folded):
            prepared = nnx.merge(graphdef, folded)
            store_out_major(prepared, _OUT_MAJOR_CHANNELS)
            graph, state = nnx.split(prepared)
            traced.append(graph)
            return state

        state = out_major(inference._chunk_state(graphdef, params, dtype))
        _PREPARED[key] = (leaves, (traced[-1], state))
        while len(_PREPARED) > _PREPARED_SLOTS:
            _PREPARED.popitem(last=False)
    return _PREPARED[key][1]


class _Steps:
    """What the two streams share: new states shaped by a trace of ``_run``, and the jitted step."""

    def _new_state(self, piece: jax.ShapeDtypeStruct) -> StreamState:
        batch = piece.shape[0]
        if batch < 1:
            raise ValueError(f"a stream needs a batch of at least one, got {batch}")
        step, total = jnp.zeros((batch,), jnp.int32), jnp.full((batch,), _UNKNOWN, jnp.int32)
        shapes = jax.eval_shape(lambda s, t, x: self._run(None, s, t, x)[0], step, total, piece)
        return StreamState(layers=jax.tree.map(lambda x: jnp.zeros(x.shape, x.dtype), shapes), step=step, total=total)

    @jax.jit
    def step(self, state: StreamState, piece: jax.Array):
        """One piece of every stream in the batch: audio ``[B, 1, window_frames * hop]`` into an encoder stream
        (out: a :class:`CodeBlock`), codes ``[B, n_q, window_frames]`` into a decoder stream (an
        :class:`AudioBlock`). Returns the new state and the block."""
        layers, out = self._run(state.layers, state.step, state.total, jnp.asarray(piece, self._piece_dtype))
        return StreamState(layers=layers, step=state.step + 1, total=state.total), out


@struct.dataclass
class EncoderStream(_Steps):
    """The encoder and quantiser as a stream: pieces of ``[B, 1, window_frames * hop]`` audio at the
    model's rate in, a :class:`CodeBlock` of ``window_frames`` frames out.

    Build it with :meth:`of`; ``init(batch)`` gives the state of ``batch`` new streams. At the end of a
    signal of ``n`` samples, ``state.ended(n)`` and push zero pieces until the codes of its last frame
    (:func:`jaxdac.geometry.encoded_length`) have come out; :class:`StreamingEncoder` does this.
    """

    graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    params: Any
    config: DACConfig = struct.field(pytree_node=False)
    window_frames: int = struct.field(pytree_node=False)
    n_quantizers: int | None = struct.field(pytree_node=False)
    dtype: str = struct.field(pytree_node=False)
    _piece_dtype = jnp.float32

    @classmethod
    def of(cls, model: DAC, window_frames: int = 1, n_quantizers: int | None = None, dtype: str = "float32"):
        if window_frames < 1:
            raise ValueError(f"window_frames must be at least 1, got {window_frames}")
        if n_quantizers is not None and not 1 <= n_quantizers <= model.n_codebooks:
            raise ValueError(f"n_quantizers must be in 1..{model.n_codebooks}, got {n_quantizers}")
        graphdef, params = _prepare(model, dtype)
        return cls(graphdef, params, model.config, window_frames, n_quantizers, dtype)

    @property
    def piece_length(self) -> int:
        """Samples per piece."""
        return self.window_frames * self.config.hop_length

    @property
    def lag(self) -> int:
        """Frames the stack runs behind its input (its right context)."""
        return geometry.stream_lag(geometry.encoder_convs(self.config))

    def _run(self, layers, step, total, audio):
        if audio.ndim != 3 or audio.shape[1] != 1 or audio.shape[2] != self.piece_length:
            raise ValueError(f"an encoder stream's pieces are [batch, 1, {self.piece_length}] audio, got shape "
                             f"{tuple(audio.shape)}")
        model = nnx.merge(self.graphdef, self.params)
        dtype = jnp.dtype(self.dtype)
        layers, latent, at = model.encoder.stream(layers, audio.transpose(0, 2, 1).astype(dtype),
                                                  Position(0, step, total))
        codes = model.quantizer(latent.astype(jnp.float32), self.n_quantizers).codes.astype(jnp.int32)
        return layers, CodeBlock(codes=codes, first=at.first(self.window_frames))

    def init(self, batch: int) -> StreamState:
        """The state of ``batch`` new streams."""
        return self._new_state(jax.ShapeDtypeStruct((batch, 1, self.piece_length), jnp.float32))


@struct.dataclass
class DecoderStream(_Steps):
    """The quantiser's code lookup and the decoder as a stream: pieces of codes ``[B, n_q, window_frames]``
    in, an :class:`AudioBlock` of ``window_frames * hop`` samples out. At the end of ``n`` frames,
    ``state.ended(n)`` and push zero codes until the last sample (:func:`jaxdac.geometry.decoded_length`)
    has come out; :class:`StreamingDecoder` does this."""

    graphdef: nnx.GraphDef = struct.field(pytree_node=False)
    params: Any
    config: DACConfig = struct.field(pytree_node=False)
    window_frames: int = struct.field(pytree_node=False)
    dtype: str = struct.field(pytree_node=False)
    _piece_dtype = jnp.int32

    @classmethod
    def of(cls, model: DAC, window_frames: int = 1, dtype: str = "float32"):
        if window_frames < 1:
            raise ValueError(f"window_frames must be at least 1, got {window_frames}")
        graphdef, params = _prepare(model, dtype)
        return cls(graphdef, params, model.config, window_frames, dtype)

    @property
    def lag(self) -> int:
        """Samples the stack runs behind its input."""
        return geometry.stream_lag(geometry.decoder_convs(self.config))

    def _run(self, layers, step, total, codes):
        n_codebooks = self.config.n_codebooks
        if codes.ndim != 3 or codes.shape[2] != self.window_frames or not 1 <= codes.shape[1] <= n_codebooks:
            raise ValueError(f"a decoder stream's pieces are [batch, 1..{n_codebooks}, {self.window_frames}] codes, "
                             f"got shape {tuple(codes.shape)}")
        model = nnx.merge(self.graphdef, self.params)
        z = model.quantizer.from_codes(codes).z.transpose(0, 2, 1).astype(jnp.dtype(self.dtype))
        layers, audio, at = model.decoder.stream(layers, z, Position(0, step, total))
        audio = audio.astype(jnp.float32).transpose(0, 2, 1)
        return layers, AudioBlock(audio=audio, first=at.first(audio.shape[-1]))

    def init(self, batch: int, n_codebooks: int | None = None) -> StreamState:
        """The state of ``batch`` new streams of ``n_codebooks`` codebooks (default: all)."""
        n = self.config.n_codebooks if n_codebooks is None else n_codebooks
        return self._new_state(jax.ShapeDtypeStruct((batch, n, self.window_frames), jnp.int32))


def _new(emitted: int, first: int, size: int, total: int | None) -> tuple[int, int]:
    """The part of an output block (positions ``first .. first + size - 1``) not yet returned: from the
    ``emitted``-th position of the signal (positions before 0 are the stream's lag) up to ``total``."""
    start = min(max(emitted - first, 0), size)
    stop = size if total is None else min(max(total - first, 0), size)
    return start, max(start, stop)


class _Pieces:
    """Input of any size cut into pieces of ``size`` along the last axis; the remainder waits."""

    def __init__(self, size: int):
        self.size = size
        self.pending: np.ndarray | None = None
        self.pushed = 0

    def add(self, x: np.ndarray) -> list[np.ndarray]:
        if self.pending is not None and x.shape[:-1] != self.pending.shape[:-1]:
            raise ValueError(f"piece of shape {x.shape} does not continue a stream of {self.pending.shape[:-1]}")
        self.pushed += x.shape[-1]
        joint = x if self.pending is None else np.concatenate([self.pending, x], axis=-1)
        whole = joint.shape[-1] // self.size * self.size
        self.pending = joint[..., whole:]
        return [joint[..., i : i + self.size] for i in range(0, whole, self.size)]

    def rest(self) -> np.ndarray:
        """The remainder, zero-padded to a whole piece (the stream's end)."""
        missing = self.size - self.pending.shape[-1]
        return np.pad(self.pending, [(0, 0)] * (self.pending.ndim - 1) + [(0, missing)])


class StreamingEncoder:
    """``push`` audio ``[B, 1, t]`` (any ``t``) at ``model.sample_rate``; get codes ``[B, n_q, k]`` as soon
    as they are final; ``flush`` at the end. The codes are :meth:`jaxdac.DAC.encode`'s."""

    def __init__(self, model: DAC, window_frames: int = 1, n_quantizers: int | None = None, dtype: str = "float32"):
        self.model = model
        self.stream = EncoderStream.of(model, window_frames, n_quantizers, dtype)
        self.window = window_frames
        self.n_codebooks = model.n_codebooks if n_quantizers is None else n_quantizers
        self.state: StreamState | None = None
        self.pieces = _Pieces(self.stream.piece_length)
        self.emitted = 0  # frames returned so far
        self.closed = False

    @property
    def latency_samples(self) -> int:
        """At most this many samples pass between a code frame's first sample and the frame coming out."""
        return (self.window + self.stream.lag) * self.model.hop_length

    def _codes(self, block: CodeBlock, frames: int | None = None) -> np.ndarray:
        codes = np.asarray(block.codes)
        start, stop = _new(self.emitted, int(block.first[0]), codes.shape[-1], frames)
        self.emitted += stop - start
        return codes[..., start:stop]

    def _empty(self, rows: int) -> np.ndarray:
        return np.zeros((rows, self.n_codebooks, 0), np.int32)

    def push(self, audio) -> np.ndarray:
        if self.closed:
            raise RuntimeError("stream already flushed")
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 3 or audio.shape[1] != 1:
            raise ValueError(f"audio pieces must be [batch, 1, samples], got shape {audio.shape}")
        if self.state is None:
            self.state = self.stream.init(audio.shape[0])
        out = []
        for piece in self.pieces.add(audio):
            self.state, block = self.stream.step(self.state, piece)
            out.append(self._codes(block))
        return np.concatenate(out, axis=-1) if out else self._empty(audio.shape[0])

    def flush(self) -> np.ndarray:
        """End of input: the remaining codes, the last ones for the audio padded to a whole frame (as
        ``encode`` pads it)."""
        if self.state is None:
            raise ValueError("no audio was pushed")
        self.closed = True
        config = self.model.config
        frames = geometry.encoded_length(config, self.pieces.pushed)
        self.state = self.state.ended(geometry.padded_input_length(config, self.pieces.pushed))
        out, piece = [], self.pieces.rest()
        while self.emitted < frames:
            self.state, block = self.stream.step(self.state, piece)
            out.append(self._codes(block, frames))
            piece = np.zeros_like(piece)
        return np.concatenate(out, axis=-1) if out else self._empty(piece.shape[0])


class StreamingDecoder:
    """``push`` codes ``[B, n_q, k]`` (any ``k``); get audio ``[B, 1, t]`` at ``model.sample_rate`` as soon as
    it is final; ``flush`` at the end. The audio is :meth:`jaxdac.DAC.decode`'s of the same codes."""

    def __init__(self, model: DAC, window_frames: int = 1, dtype: str = "float32"):
        self.model = model
        self.stream = DecoderStream.of(model, window_frames, dtype)
        self.window = window_frames
        self.state: StreamState | None = None
        self.pieces = _Pieces(window_frames)
        self.emitted = 0  # samples returned so far
        self.closed = False

    @property
    def latency_frames(self) -> int:
        """At most this many code frames are pushed after a frame before its audio has all come out."""
        return -(-self.stream.lag // self.model.hop_length) + self.window - 1

    def _audio(self, block: AudioBlock, samples: int | None = None) -> np.ndarray:
        audio = np.asarray(block.audio)
        start, stop = _new(self.emitted, int(block.first[0]), audio.shape[-1], samples)
        self.emitted += stop - start
        return audio[..., start:stop]

    def push(self, codes) -> np.ndarray:
        if self.closed:
            raise RuntimeError("stream already flushed")
        codes = np.asarray(codes, np.int32)
        if codes.ndim != 3:
            raise ValueError(f"code pieces must be [batch, n_codebooks, frames], got shape {codes.shape}")
        if self.state is None:
            self.state = self.stream.init(codes.shape[0], codes.shape[1])
        out = []
        for piece in self.pieces.add(codes):
            self.state, block = self.stream.step(self.state, piece)
            out.append(self._audio(block))
        return np.concatenate(out, axis=-1) if out else np.zeros((codes.shape[0], 1, 0), np.float32)

    def flush(self) -> np.ndarray:
        """End of input: the remaining audio, ending where whole-sequence ``decode`` ends."""
        if self.state is None:
            raise ValueError("no codes were pushed")
        self.closed = True
        samples = geometry.decoded_length(self.model.config, self.pieces.pushed)
        self.state = self.state.ended(self.pieces.pushed)
        out, piece = [], self.pieces.rest()
        while self.emitted < samples:
            self.state, block = self.stream.step(self.state, piece)
            out.append(self._audio(block, samples))
            piece = np.zeros_like(piece)
        return np.concatenate(out, axis=-1) if out else np.zeros((piece.shape[0], 1, 0), np.float32)


@dataclasses.dataclass
class LiveRun:
    """What :func:`live` measured. Times are seconds of computation per piece pushed (compilation done
    before, apart in ``compile_seconds``); the latency is measured, not derived: the most input samples
    that had arrived after a sample before its decoded sample came out."""

    audio: np.ndarray  # [C, T] decoded, at the model's rate, as long as the input
    codes: np.ndarray  # [C, n_q, F]
    piece_seconds: float  # audio duration of one piece
    encode_seconds: list[float]
    decode_seconds: list[float]
    compile_seconds: float
    latency_samples: int
    sample_rate: int

    def real_time_factor(self, which: str = "both") -> float:
        """Computation time over audio duration (below 1: faster than real time)."""
        times = {"encode": self.encode_seconds, "decode": self.decode_seconds,
                 "both": [a + b for a, b in zip(self.encode_seconds, self.decode_seconds)]}[which]
        return float(np.sum(times)) / (len(times) * self.piece_seconds)


def live(model: DAC, audio: np.ndarray, window_frames: int = 1, dtype: str = "float32",
         progress: bool = False) -> LiveRun:
    """Code ``audio [C, T]`` (model rate; channels as a batch of streams) as a live input: pieces of
    ``window_frames`` frames through :class:`StreamingEncoder`, each piece's codes at once through
    :class:`StreamingDecoder`, timing both; then the end of the signal (``flush``)."""
    import time

    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[1] == 0:
        raise ValueError(f"live audio must be [channels, samples] with samples, got shape {audio.shape}")
    hop = model.hop_length
    piece = window_frames * hop
    start = time.perf_counter()
    warm_encoder = StreamingEncoder(model, window_frames, dtype=dtype)  # compiles both steps
    warm_codes = warm_encoder.push(np.zeros((audio.shape[0], 1, piece), np.float32))
    StreamingDecoder(model, window_frames, dtype=dtype).push(
        np.zeros((audio.shape[0], model.n_codebooks, window_frames), np.int32))
    compile_seconds = time.perf_counter() - start
    del warm_codes

    encoder = StreamingEncoder(model, window_frames, dtype=dtype)
    decoder = StreamingDecoder(model, window_frames, dtype=dtype)
    codes, out, enc_t, dec_t = [], [], [], []
    latency, produced = 0, 0

    def emitted(y: np.ndarray, arrived: int) -> None:
        nonlocal latency, produced
        if y.shape[-1]:
            produced += y.shape[-1]
            latency = max(latency, arrived - (produced - y.shape[-1]) - 1)  # the block's first sample waited most
            out.append(y)

    x = audio[:, None, :]
    for at in inference._progress(range(0, audio.shape[1], piece), -(-audio.shape[1] // piece), progress, "stream"):
        t0 = time.perf_counter()
        c = encoder.push(x[..., at : at + piece])
        t1 = time.perf_counter()
        y = decoder.push(c)
        t2 = time.perf_counter()
        enc_t.append(t1 - t0)
        dec_t.append(t2 - t1)
        codes.append(c)
        emitted(y, min(at + piece, audio.shape[1]))
    c = encoder.flush()
    codes.append(c)
    emitted(decoder.push(c), audio.shape[1])
    emitted(decoder.flush(), audio.shape[1])
    decoded = np.concatenate(out, axis=-1)[:, 0, : audio.shape[1]]  # the last frame's padding dropped
    return LiveRun(audio=decoded, codes=np.concatenate(codes, axis=-1),
                   piece_seconds=piece / model.sample_rate, encode_seconds=enc_t, decode_seconds=dec_t,
                   compile_seconds=compile_seconds, latency_samples=latency, sample_rate=model.sample_rate)
