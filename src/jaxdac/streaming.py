"""Streaming encode and decode: audio or codes in pieces of any size, results out with a fixed latency.

Both run the seamless plan of :func:`jaxdac.geometry.seamless_plan` incrementally: a window of frames
is computed as soon as the input covering it and its right-hand context has arrived, on a segment of
one fixed length (one compiled shape). The segments are the ones the batch plan would choose, so the
streamed result equals :func:`jaxdac.compress` / :func:`jaxdac.decompress` in seamless mode on the
whole input (before their loudness normalisation and resampling, which need the whole file: stream
audio at ``model.sample_rate``, normalised as you wish).

Latency, with a window of ``W`` frames and ``R`` frames of right context (8 for the encoder, 11 for
the decoder of every released model): a window is emitted as soon as ``W + R`` frames from its start
have arrived, so every code frame comes out at most ``(W + R) * hop`` samples after its first sample
(``StreamingEncoder.latency_samples``; 9 * 512 = 4608 samples, 104 ms, for the 44.1 kHz model at
``W = 1``), and the audio of a code frame at most ``W + R`` frames after it was pushed
(``StreamingDecoder.latency_frames``). The last ``R`` frames come out at ``flush``.
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp
from flax import nnx

from jaxdac import geometry
from jaxdac.inference import _decode_chunks, _encode_chunks
from jaxdac.nn.codec import DAC


class _Stream:
    """Incremental seamless plan over a growing input measured in frames of ``scale`` items."""

    def __init__(self, model: DAC, window: int, context: geometry.Context, scale: int):
        if window < 1:
            raise ValueError(f"window must be at least one frame, got {window}")
        self.model = model
        self.graphdef, self.state = nnx.split(model)
        self.window, self.context, self.scale = window, context, scale
        self.length = context.left + window + context.right  # segment length in frames
        self.buffer: np.ndarray | None = None  # input from frame `self.offset` on
        self.offset = 0
        self.next = 0  # first frame not yet emitted
        self.closed = False

    def _append(self, x: np.ndarray) -> None:
        if self.closed:
            raise RuntimeError("stream already flushed")
        if self.buffer is None:
            self.buffer = x
        else:
            if x.shape[:-1] != self.buffer.shape[:-1]:
                raise ValueError(f"piece of shape {x.shape} does not continue a stream of {self.buffer.shape[:-1]}")
            self.buffer = np.concatenate([self.buffer, x], axis=-1)

    def _available(self) -> int:
        return 0 if self.buffer is None else self.offset + self.buffer.shape[-1] // self.scale

    def _segment(self, start: int, length: int) -> np.ndarray:
        # Input not yet arrived is zero-filled: it lies beyond the right context of the kept frames,
        # so it cannot change them (their receptive field ends inside the data).
        assert start >= self.offset, (start, self.offset)
        a = (start - self.offset) * self.scale
        piece = self.buffer[..., a : a + length * self.scale]
        missing = length * self.scale - piece.shape[-1]
        return np.pad(piece, ((0, 0), (0, 0), (0, missing))) if missing else piece

    def _ready(self) -> list[tuple[int, int, int]]:
        """(start, keep_start, keep_stop) of every window whose frames and right context have arrived."""
        out = []
        while True:
            start = max(0, self.next - self.context.left)
            if self.next + self.window + self.context.right > self._available():
                return out
            out.append((start, self.next, self.next + self.window))
            self.next += self.window

    def _trim(self) -> None:
        # Keep only what later segments can still read. The last segment slides back to end at the
        # input's end, so it can start up to one segment length before the next frame to emit.
        keep_from = max(self.offset, self.next - self.length)
        drop = (keep_from - self.offset) * self.scale
        if drop > 0:
            self.buffer = self.buffer[..., drop:]
            self.offset = keep_from


class StreamingEncoder(_Stream):
    """``push`` audio ``[B, 1, t]`` at ``model.sample_rate``; get codes ``[B, n_q, k]`` as they are final."""

    def __init__(self, model: DAC, window_frames: int = 1, n_quantizers: int | None = None):
        super().__init__(model, window_frames, geometry.encoder_context(model.config), model.hop_length)
        self.n_quantizers = n_quantizers

    @property
    def latency_samples(self) -> int:
        return (self.window + self.context.right) * self.model.hop_length

    def _run(self, segment: np.ndarray) -> np.ndarray:
        return np.asarray(_encode_chunks(self.graphdef, self.state, jnp.asarray(segment), self.n_quantizers, True))

    def _empty(self) -> np.ndarray:
        rows = 0 if self.buffer is None else self.buffer.shape[0]
        n = self.model.n_codebooks if self.n_quantizers is None else self.n_quantizers
        return np.zeros((rows, n, 0), np.int32)

    def push(self, audio) -> np.ndarray:
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 3 or audio.shape[1] != 1:
            raise ValueError(f"audio pieces must be [batch, 1, samples], got shape {audio.shape}")
        self._append(audio)
        pieces = [self._run(self._segment(s, self.length))[..., a - s : b - s] for s, a, b in self._ready()]
        self._trim()
        return np.concatenate(pieces, axis=-1) if pieces else self._empty()

    def flush(self) -> np.ndarray:
        """End of input: pad to a whole frame (as ``encode`` does) and return the remaining codes."""
        if self.buffer is None:
            raise ValueError("no audio was pushed")
        self.closed = True
        total = -(-(self.offset * self.scale + self.buffer.shape[-1]) // self.scale)
        self.buffer = np.pad(self.buffer, ((0, 0), (0, 0), (0, (total - self.offset) * self.scale - self.buffer.shape[-1])))
        pieces = []
        while self.next < total:
            length = min(self.length, total)
            start = min(max(0, self.next - self.context.left), total - length)
            stop = min(self.next + self.window, total)
            pieces.append(self._run(self._segment(start, length))[..., self.next - start : stop - start])
            self.next = stop
        return np.concatenate(pieces, axis=-1) if pieces else self._empty()


class StreamingDecoder(_Stream):
    """``push`` codes ``[B, n_q, k]``; get audio ``[B, 1, t]`` at ``model.sample_rate`` as it is final."""

    def __init__(self, model: DAC, window_frames: int = 1):
        super().__init__(model, window_frames, geometry.decoder_context(model.config), 1)

    @property
    def latency_frames(self) -> int:
        return self.window + self.context.right

    def _run(self, segment: np.ndarray) -> np.ndarray:
        return np.asarray(_decode_chunks(self.graphdef, self.state, jnp.asarray(segment), True))

    def _cut(self, start: int, keep_start: int, keep_stop: int, length: int, out_length: int) -> np.ndarray:
        hop = self.model.hop_length
        y = self._run(self._segment(start, length))
        a, b = keep_start * hop, min(keep_stop * hop, out_length)
        return y[:, None, a - start * hop : b - start * hop]

    def push(self, codes) -> np.ndarray:
        codes = np.asarray(codes, np.int32)
        if codes.ndim != 3:
            raise ValueError(f"code pieces must be [batch, n_codebooks, frames], got shape {codes.shape}")
        self._append(codes)
        hop = self.model.hop_length
        rows = self.buffer.shape[0]
        pieces = [self._cut(s, a, b, self.length, (s + self.length) * hop) for s, a, b in self._ready()]
        self._trim()
        return np.concatenate(pieces, axis=-1) if pieces else np.zeros((rows, 1, 0), np.float32)

    def flush(self) -> np.ndarray:
        """End of input: the remaining audio, ending where whole-sequence ``decode`` ends."""
        if self.buffer is None:
            raise ValueError("no codes were pushed")
        self.closed = True
        total = self.offset + self.buffer.shape[-1]
        out_length = geometry.decoded_length(self.model.config, total)
        pieces = []
        while self.next < total:
            length = min(self.length, total)
            start = min(max(0, self.next - self.context.left), total - length)
            stop = min(self.next + self.window, total)
            pieces.append(self._cut(start, self.next, stop, length, out_length))
            self.next = stop
        rows = self.buffer.shape[0]
        return np.concatenate(pieces, axis=-1) if pieces else np.zeros((rows, 1, 0), np.float32)
