"""ITU-R BS.1770-4 gated integrated loudness, measured the way the original measures it.

The original normalizes loudness with ``audiotools.AudioSignal.loudness()`` (audiotools 0.7.2), a batched
port of pyloudnorm's meter. This module reproduces its numbers, edge cases included:

* K-weighting is pyloudnorm's pair of RBJ biquads (a +4 dB high shelf at 1500 Hz, then a 38 Hz high
  pass) with coefficients rounded to float32, as audiotools applies them;
* signals shorter than 0.5 s are zero-padded at the end (before filtering) up to 0.5 s;
* blocks of ``int(0.4 * rate)`` samples hop by ``int(0.1 * rate)``; the last block is zero-padded so
  every sample is covered (julius's ``unfold``), so the block count is
  ``1 + ceil((T - block) / hop)``, not pyloudnorm's rounded count;
* the absolute gate keeps blocks strictly above -70 LUFS, the relative gate blocks strictly above the
  gated mean minus 10 LU; with no block left the result is clamped to -70 LUFS.

How the IIR filter runs in JAX. The two biquads are merged into one 4th-order state-space filter and run
by chunks of ``_CHUNK`` samples:

* inside a chunk, the response to the chunk's own input is a [chunk, chunk] lower-triangular Toeplitz
  matmul with the filter's impulse response (exact: an IIR's zero-state response over ``n`` samples only
  needs the first ``n`` taps of its impulse response);
* the filter state carried from chunk to chunk obeys ``s[c+1] = P s[c] + u[c]`` with ``P = A^chunk``
  (``u[c]`` is the state the chunk's input alone leaves behind). Inside groups of 64 chunks this is one
  small contraction with precomputed powers of ``P``; a ``lax.scan`` over groups (T / 8192 steps)
  carries the state from group to group;
* the carried state's contribution to each output sample is one more small matmul.

This is the exact IIR filter, so it agrees with audiotools' float32 ``lfilter`` to float32 rounding at
any rate and length (about 1e-5 LU of loudness). ``benchmarks/dsp_speed.py`` compares it (second table)
with the alternatives on one minute of stereo 44.1 kHz audio. On 2 shared CPU cores the chunked filter
took 0.04-0.08 s over several runs, while:

* a per-sample ``lax.scan`` of the two biquads (a direct port of ``lfilter``), also exact, took 0.10 s,
  and its T sequential steps leave parallel hardware idle;
* a per-sample ``lax.associative_scan`` of the diagonalized recurrence, exact and parallel but working
  on arrays several times the signal's size, took 0.4 s and 2.5-4.5 s to compile;
* an FIR approximation by the truncated impulse response, which audiotools uses on GPU with 512 taps,
  is off by 0.008 LU at 44.1 kHz (the 38 Hz high pass rings for thousands of samples) and needs 2048
  taps for 1e-5 LU, as an FFT convolution taking 0.25-0.3 s.

So the chunked exact filter is kept. Its state-space basis is a balanced realization (see
``_balanced_cascade``), which keeps float32 rounding at ~1e-7 of the signal at any sample rate, and its
matmuls ask for full float32 precision, so that accelerators that would default to reduced-precision
float32 matmuls keep the 1e-5 LU agreement.
"""

from __future__ import annotations

import collections
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

MIN_LOUDNESS = -70.0
"""Floor of :func:`loudness` in LUFS: silence and signals whose blocks are all gated away read -70."""

# BS.1770 channel weights for L, R, C, Ls, Rs.
_CHANNEL_WEIGHTS = (1.0, 1.0, 1.0, 1.41, 1.41)
_ABSOLUTE_GATE = -70.0  # LUFS
_RELATIVE_GATE = -10.0  # LU below the absolutely gated loudness
_OVERLAP = 0.75  # of the block duration
_MIN_DURATION = 0.5  # seconds; shorter signals are zero-padded up to this
_CHUNK = 128  # samples per Toeplitz chunk of the IIR filter
_GATE_SEGMENTS = 1024  # smallest gate size of LoudnessMeter: 102 s at rates whose block is 4 hops
_GROUP = 64  # chunks per group in the state recurrence
_EXACT = jax.lax.Precision.HIGHEST  # float32 matmuls in full float32, on every backend
_N_STATES = 4  # the two biquads' states

TRACES: collections.Counter = collections.Counter()
"""Traces of :class:`LoudnessMeter`'s jitted step by shape: a count above one per shape is a recompilation."""


def _rbj_biquad(kind: str, gain_db: float, q: float, fc: float, rate: int) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` of one RBJ "audio EQ cookbook" biquad, normalized so ``a[0] == 1``."""
    big_a = 10.0 ** (gain_db / 40.0)
    w0 = 2.0 * math.pi * fc / rate
    cos_w0 = math.cos(w0)
    alpha = math.sin(w0) / (2.0 * q)
    if kind == "high_shelf":
        root = 2.0 * math.sqrt(big_a) * alpha
        b = [
            big_a * ((big_a + 1) + (big_a - 1) * cos_w0 + root),
            -2.0 * big_a * ((big_a - 1) + (big_a + 1) * cos_w0),
            big_a * ((big_a + 1) + (big_a - 1) * cos_w0 - root),
        ]
        a = [
            (big_a + 1) - (big_a - 1) * cos_w0 + root,
            2.0 * ((big_a - 1) - (big_a + 1) * cos_w0),
            (big_a + 1) - (big_a - 1) * cos_w0 - root,
        ]
    elif kind == "high_pass":
        b = [(1 + cos_w0) / 2, -(1 + cos_w0), (1 + cos_w0) / 2]
        a = [1 + alpha, -2.0 * cos_w0, 1 - alpha]
    else:
        raise ValueError(f"unknown biquad kind {kind!r}")
    b, a = np.asarray(b), np.asarray(a)
    return b / a[0], a / a[0]


def k_weighting_biquads(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two K-weighting stages ``[(b, a), ...]`` in application order, float64 holding float32 values.

    The design is pyloudnorm's (RBJ cookbook, not the BS.1770 table, which is only given for 48 kHz);
    the rounding to float32 is audiotools', which converts the coefficients with ``.float()``.
    """
    stages = [
        _rbj_biquad("high_shelf", 4.0, 1 / math.sqrt(2), 1500.0, sample_rate),
        _rbj_biquad("high_pass", 0.0, 0.5, 38.0, sample_rate),
    ]
    return [(b.astype(np.float32).astype(np.float64), a.astype(np.float32).astype(np.float64)) for b, a in stages]


def _biquad_state_space(b: np.ndarray, a: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Transposed direct form II of one biquad (``a[0] == 1``) as ``s' = A s + B x``, ``y = C s + D x``."""
    big_a = np.array([[-a[1], 1.0], [-a[2], 0.0]])
    big_b = b[1:] - a[1:] * b[0]
    big_c = np.array([1.0, 0.0])
    return big_a, big_b, big_c, float(b[0])


def _balanced_cascade(sample_rate: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """The K-weighting cascade as one 4-state filter ``(A, B, C, D)`` in a balanced basis (float64).

    Feeding biquad 1 into biquad 2 gives a block-triangular 4x4 system. Its basis matters once the
    chunk matrices are rounded to float32: the 38 Hz high pass has a (numerically) double pole near
    z = 0.995, so in the direct-form basis the state holds large, nearly cancelling terms (1e-4 relative
    error at 44.1 kHz, 1e-3 at 192 kHz) and in the eigenbasis the two eigenvectors are nearly parallel
    at some rates (1e-3 at 81378 Hz). A balanced realization, whose controllability and observability
    Gramians are equal and diagonal, keeps every state as easy to reach as to observe, which is what
    bounds the effect of rounding: it matches a float64 lfilter to ~1.3e-7 at every rate from 8 to 192 kHz.
    """
    (a1, b1, c1, d1), (a2, b2, c2, d2) = (_biquad_state_space(b, a) for b, a in k_weighting_biquads(sample_rate))
    big_a = np.block([[a1, np.zeros((2, 2))], [np.outer(b2, c1), a2]])
    big_b = np.concatenate([b1, b2 * d1])
    big_c = np.concatenate([d2 * c1, c2])
    # Gramians from the discrete Lyapunov equations W = A W A' + B B' and W = A' W A + C' C (vectorized).
    eye = np.eye(big_a.size)
    reach = np.linalg.solve(eye - np.kron(big_a, big_a), np.outer(big_b, big_b).ravel()).reshape(big_a.shape)
    seen = np.linalg.solve(eye - np.kron(big_a.T, big_a.T), np.outer(big_c, big_c).ravel()).reshape(big_a.shape)
    # Square-root balancing: with W_c = Lc Lc', W_o = Lo Lo' and Lo' Lc = U diag(h) V', the basis change
    # T = Lc V h^-1/2 (inverse h^-1/2 U' Lo') makes both Gramians diag(h), the Hankel singular values.
    lc = np.linalg.cholesky((reach + reach.T) / 2)
    lo = np.linalg.cholesky((seen + seen.T) / 2)
    u, hankel, vt = np.linalg.svd(lo.T @ lc)
    to_balanced = (u.T @ lo.T) / np.sqrt(hankel)[:, None]
    from_balanced = lc @ vt.T / np.sqrt(hankel)
    return to_balanced @ big_a @ from_balanced, to_balanced @ big_b, big_c @ from_balanced, d1 * d2


@functools.lru_cache(maxsize=None)
def _chunk_operators(sample_rate: int, chunk: int, group: int) -> tuple[np.ndarray, ...]:
    """Constant float32 matrices that run the K-weighting cascade by chunks (see the module docstring).

    With the balanced filter ``(A, B, C, D)`` of S states and ``P = A^chunk``, returns

    * ``forward [chunk, chunk + S]``: a chunk's input -> its zero-state output (a Toeplitz matrix of the
      impulse response) next to the state that input alone leaves behind (rows ``A^(chunk-1-k) B``);
    * ``from_state [S, chunk]``: state at a chunk's start -> its contribution ``C A^n s`` to output n;
    * ``within [group, group, S, S]``: ``P^(i-j)`` for ``i >= j`` (else 0), which sums the states left by
      chunks ``j <= i`` of a group into the state after chunk ``i``;
    * ``rise [group, S, S]``: ``P^(i+1)``, how a group's starting state has evolved after its chunk ``i``;
      the last one carries that state across the whole group.

    Every power is computed in float64 and rounded once, so nothing accumulates rounding.
    """
    big_a, big_b, big_c, d = _balanced_cascade(sample_rate)
    n_states = big_a.shape[0]
    powers = np.empty((chunk + 1, n_states, n_states))  # A^0 .. A^chunk
    powers[0] = np.eye(n_states)
    for i in range(chunk):
        powers[i + 1] = big_a @ powers[i]
    # Impulse response h[0] = D, h[n] = C A^(n-1) B.
    impulse = np.concatenate([[d], np.einsum("i,nij,j->n", big_c, powers[: chunk - 1], big_b)])
    lag = np.arange(chunk)[None, :] - np.arange(chunk)[:, None]  # [k, n]: input k, output n
    toeplitz = np.where(lag >= 0, impulse[np.clip(lag, 0, None)], 0.0)
    to_state = np.einsum("kij,j->ki", powers[chunk - 1 :: -1][:chunk], big_b)  # [chunk, S]
    from_state = np.einsum("i,nij->jn", big_c, powers[:chunk])  # [S, chunk]
    carry = np.empty((group + 1, n_states, n_states))  # P^0 .. P^group
    carry[0] = np.eye(n_states)
    for i in range(group):
        carry[i + 1] = powers[chunk] @ carry[i]
    steps = np.arange(group)[:, None] - np.arange(group)[None, :]  # [i, j]: chunks from j to i
    within = np.where((steps >= 0)[..., None, None], carry[np.maximum(steps, 0)], 0.0)
    return tuple(
        m.astype(np.float32)
        for m in (np.concatenate([toeplitz, to_state], axis=1), from_state, within, carry[1:])
    )


@functools.partial(jax.jit, static_argnames=("sample_rate",))
def k_weight(audio: jax.Array, sample_rate: int) -> jax.Array:
    """K-weighting filter (both stages, zero initial state) along the last axis. ``[..., T] -> [..., T]``."""
    *lead, length = audio.shape
    return _k_weight_padded(audio.reshape(-1, length), sample_rate, length)[:, :length].reshape(*lead, length)


def _k_weight_padded(x: jax.Array, sample_rate: int, min_length: int) -> jax.Array:
    """K-weighting of ``x [N, T]`` extended with zeros: ``[N, P]``, ``P >= min_length`` a whole number of
    chunk groups. Past ``T`` the output is the filter's ringing; callers slice or mask it."""
    length = x.shape[-1]
    n_groups = -(-max(length, min_length) // (_CHUNK * _GROUP))
    x = jnp.pad(x, ((0, 0), (0, n_groups * _GROUP * _CHUNK - length)))
    state = jnp.zeros((x.shape[0], _N_STATES), x.dtype)
    return _k_weight_groups(x, sample_rate, state)[0]


def _k_weight_groups(x: jax.Array, sample_rate: int, state: jax.Array) -> tuple[jax.Array, jax.Array]:
    """K-weighting of ``x [N, P]`` (``P`` a whole number of chunk groups) from filter state ``state [N, S]``:
    returns the output ``[N, P]`` and the state after the last sample.

    The whole-signal path starts from zero state; :class:`LoudnessMeter` feeds a stream through it a few
    groups at a time, carrying the returned state. The state at each group's start is the scan's carry
    in both cases, so both do the same arithmetic; only the matmul kernels, which XLA picks by shape
    (here by the number of groups per call), may round differently, by a float32 ulp or two.
    """
    forward, from_state, within, rise = map(jnp.asarray, _chunk_operators(sample_rate, _CHUNK, _GROUP))
    n_rows, n_groups = x.shape[0], x.shape[-1] // (_CHUNK * _GROUP)
    x = x.reshape(n_rows, n_groups * _GROUP, _CHUNK)  # [N, K, chunk]
    out = jnp.matmul(x, forward, precision=_EXACT)  # [N, K, chunk + S]
    zero_state = out[..., :_CHUNK]  # [N, K, chunk]
    pushed = out[..., _CHUNK:].reshape(n_rows, n_groups, _GROUP, -1)  # [N, G, group, S]

    # The state after chunk c is s[c] = P s[c-1] + pushed[c]. Within each group of chunks, from a zero
    # start, that is one small contraction with the powers of P; a short scan over groups then carries
    # each group's final state into the next, through which it evolves by `rise`.
    local = jnp.einsum("ijab,ngjb->ngia", within, pushed, precision=_EXACT)  # [N, G, group, S]

    def carry_over(state, local_end):  # [N, S]: state before a group -> state before the next
        return jnp.matmul(state, rise[-1].T, precision=_EXACT) + local_end, state

    final, starts = jax.lax.scan(carry_over, state, jnp.moveaxis(local[:, :, -1], 1, 0))  # starts [G, N, S]
    after = local + jnp.einsum("iab,gnb->ngia", rise, starts, precision=_EXACT)  # [N, G, group, S]
    # State at each chunk's start: the group's start for its first chunk, else the previous chunk's end.
    before = jnp.concatenate([jnp.moveaxis(starts, 0, 1)[:, :, None], after[:, :, :-1]], axis=2)
    before = before.reshape(n_rows, n_groups * _GROUP, -1)
    y = zero_state + jnp.matmul(before, from_state, precision=_EXACT)  # [N, K, chunk]
    return y.reshape(n_rows, n_groups * _GROUP * _CHUNK), final


def _block_geometry(length: int, sample_rate: int, block_size: float) -> tuple[int, int, int]:
    """``(block, hop, n_blocks)`` in samples, with audiotools' float-to-int rounding."""
    block = int(block_size * sample_rate)
    hop = int(block_size * sample_rate * (1.0 - _OVERLAP))
    n_blocks = math.ceil((max(length, block) - block) / hop) + 1
    return block, hop, n_blocks


@functools.partial(jax.jit, static_argnames=("sample_rate", "block_size"))
def loudness(audio: jax.Array, sample_rate: int, block_size: float = 0.4) -> jax.Array:
    """Integrated loudness in LUFS of ``audio [B, C, T]`` (C <= 5, ordered L, R, C, Ls, Rs). Returns ``[B]``.

    Equals ``audiotools.AudioSignal(audio, sample_rate).loudness()`` to float32 rounding, including its
    0.5 s zero-padding of short signals and its -70 LUFS floor.
    """
    audio = jnp.asarray(audio, jnp.float32)
    batch, channels, length = audio.shape
    _check_channels(channels)
    if length / sample_rate < _MIN_DURATION:
        # Padded before filtering, so the filter's ringing after the signal's end is measured too.
        pad = int((_MIN_DURATION - length / sample_rate) * sample_rate)
        audio = jnp.pad(audio, ((0, 0), (0, 0), (0, pad)))
        length += pad
    block, hop, n_blocks = _block_geometry(length, sample_rate, block_size)
    covered = (n_blocks - 1) * hop + block
    # Filter straight into a buffer long enough for every block; _gate zeroes what lies past the end.
    weighted = _k_weight_padded(audio.reshape(-1, length), sample_rate, covered)
    return _gate(weighted.reshape(batch, channels, -1), length, sample_rate, block_size)


@functools.partial(jax.jit, static_argnames=("sample_rate", "block_size"))
def gated_loudness(weighted: jax.Array, sample_rate: int, block_size: float = 0.4) -> jax.Array:
    """BS.1770 gating of an already K-weighted ``weighted [B, C, T]``: integrated loudness ``[B]`` in LUFS."""
    _check_channels(weighted.shape[1])
    return _gate(weighted, weighted.shape[-1], sample_rate, block_size)


class LoudnessMeter:
    """Integrated loudness of a stream of ``[batch, channels, t]`` pieces, equal to :func:`loudness` of
    their concatenation, in memory bounded by one step of samples plus the per-segment sums.

    Gating needs every block's power before it can decide anything, so the meter cannot finish early;
    but blocks only need sums of squares over segments of ``gcd(block, hop)`` samples, and the filter only
    needs its 4-number state. So each step filters ``step`` samples from the carried state, squares them
    and adds them up by segment; a partly filled segment waits in a ``[batch, channels, seg]`` tail for
    the next step. What is kept grows by one float per segment, not per sample: per 0.1 s where the
    block is four whole hops (16, 24, 44.1, 48 kHz), but per 2 samples at 11025 Hz, whose 4410-sample
    block and 1102-sample hop share only a factor 2.

    Pieces of any length are buffered until a whole step is there, so the jitted step always sees one
    shape and a stream compiles it once, whatever the piece sizes. ``step`` (samples, a multiple of 8192)
    trades that buffer against the number of jitted calls.

    Call :meth:`push` for each piece, then :meth:`result` once: it filters what is left, zero-extends the
    signal as :func:`loudness` does (signals shorter than 0.5 s are zero-padded before filtering, the
    last block is zero-filled) and consumes the meter. The filter and the gate are :func:`loudness`'s
    own; the result matches it to float32 rounding (the filtered samples can differ by an ulp, see
    ``_k_weight_groups``), which the tests bound by 1e-5 LU and which usually rounds away entirely.
    """

    def __init__(
        self, sample_rate: int, batch: int, channels: int, block_size: float = 0.4, *, step: int = 1 << 16
    ):
        _check_channels(channels)
        group = _CHUNK * _GROUP
        if step <= 0 or step % group:
            raise ValueError(f"step must be a positive multiple of {group} samples, got {step}")
        block, hop, _ = _block_geometry(0, sample_rate, block_size)
        self.sample_rate, self.batch, self.channels, self.block_size = sample_rate, batch, channels, block_size
        self._step_len = step
        self._seg = math.gcd(block, hop)
        self._raw = np.zeros((batch, channels, 0), np.float32)  # unfiltered samples, fewer than `step`
        self._state = jnp.zeros((batch * channels, _N_STATES), jnp.float32)  # after the filtered samples
        self._tail = jnp.zeros((batch, channels, self._seg), jnp.float32)  # squares of the open segment
        self._filled = 0  # samples in the open segment
        self._sums: list[np.ndarray] = []  # [B, C, k] sums of squares of closed segments
        self._length = 0
        self._done = False

    def push(self, audio) -> None:
        """Add the next ``audio [batch, channels, t]`` samples (``t >= 0``, numpy or JAX)."""
        if self._done:
            raise RuntimeError("result() has consumed this meter; start a new one")
        audio = np.asarray(audio, np.float32)
        if audio.ndim != 3 or audio.shape[:2] != (self.batch, self.channels):
            raise ValueError(f"expected [{self.batch}, {self.channels}, t] audio, got {list(audio.shape)}")
        self._length += audio.shape[-1]
        self._raw = self._filter_steps(np.concatenate([self._raw, audio], axis=-1))

    def result(self) -> np.ndarray:
        """Integrated loudness ``[batch]`` in LUFS of everything pushed: ``loudness(concatenation)``."""
        if self._done:
            raise RuntimeError("result() was already called")
        self._done = True
        length, raw = self._length, self._raw
        if length / self.sample_rate < _MIN_DURATION:
            # loudness() pads short signals before filtering: the padding is signal, ringing included.
            pad = int((_MIN_DURATION - length / self.sample_rate) * self.sample_rate)
            raw = np.concatenate([raw, np.zeros((self.batch, self.channels, pad), np.float32)], axis=-1)
            length += pad
        raw = self._filter_steps(raw)
        # The last step: zeros after the samples, which the step masks out, so the open segment closes
        # with zeros as the zero-filled last block wants. Run even with no sample left, to close a tail.
        valid = raw.shape[-1]
        padded = np.pad(raw, ((0, 0), (0, 0), (0, self._step_len - valid)))
        sums, whole = self._step(padded, valid)
        self._sums.append(sums[..., : whole + (self._filled > 0)])
        seg_sums = np.concatenate(self._sums, axis=-1)
        self._sums, self._raw = [], None
        # Segments past the last sample up to the end of the last block hold only zeros.
        block, hop, n_blocks = _block_geometry(length, self.sample_rate, self.block_size)
        n_segs = ((n_blocks - 1) * hop + block) // self._seg
        # The gate runs on a few fixed sizes (a power of two of segments, at least _GATE_SEGMENTS), the
        # block count traced, so that signals of many lengths share its compiled program.
        size = max(_GATE_SEGMENTS, 1 << (n_segs - 1).bit_length())
        seg_sums = np.pad(seg_sums, ((0, 0), (0, 0), (0, size - seg_sums.shape[-1])))
        return np.asarray(_gate_segments_jit(seg_sums, self.sample_rate, self.block_size, np.int32(n_blocks)))

    def _filter_steps(self, raw: np.ndarray) -> np.ndarray:
        """Run every whole step of ``raw [B, C, t]`` through the filter; return the rest (a copy)."""
        n_steps = raw.shape[-1] // self._step_len
        for i in range(n_steps):
            sums, whole = self._step(raw[..., i * self._step_len : (i + 1) * self._step_len], self._step_len)
            self._sums.append(sums[..., :whole])
        return raw[..., n_steps * self._step_len :].copy()

    def _step(self, raw: np.ndarray, valid: int) -> tuple[np.ndarray, int]:
        """Filter one step whose first ``valid`` samples count; return its segment sums and how many of
        them are closed. Updates the filter state and the open segment."""
        sums, self._state, self._tail = _meter_step(
            raw, self._state, self._tail, np.int32(self._filled), np.int32(valid),
            sample_rate=self.sample_rate, seg=self._seg,
        )
        whole, self._filled = divmod(self._filled + valid, self._seg)
        return np.asarray(sums), whole


@functools.partial(jax.jit, static_argnames=("sample_rate", "seg"))
def _meter_step(
    raw: jax.Array,  # [B, C, step]
    state: jax.Array,  # [B * C, S]
    tail: jax.Array,  # [B, C, seg]
    filled: jax.Array,  # int32 scalar
    valid: jax.Array,  # int32 scalar
    sample_rate: int,
    seg: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One :class:`LoudnessMeter` step: ``raw [B, C, step]`` filtered from ``state [B * C, S]``, its first
    ``valid`` squares appended to the open segment ``tail [B, C, seg]`` (``filled`` samples in it, zeros
    after). Returns the sums of the ``ceil(step / seg) + 1`` segments that start at the tail's start
    (only the whole ones are final), the state after ``raw``, and the new open segment, zero after its
    samples. Sample counts are traced, so one compilation serves every step of a given shape."""
    TRACES["meter_step", raw.shape, sample_rate, seg] += 1
    batch, channels, step = raw.shape
    y, state = _k_weight_groups(raw.reshape(batch * channels, step), sample_rate, state)
    power = jnp.where(jnp.arange(step) < valid, y.reshape(batch, channels, step) ** 2, 0.0)
    n_segs = -(-(seg + step) // seg)
    buffer = jnp.zeros((batch, channels, n_segs * seg), power.dtype).at[..., :seg].set(tail)
    buffer = jax.lax.dynamic_update_slice(buffer, power, (0, 0, filled))
    sums = buffer.reshape(batch, channels, n_segs, seg).sum(-1)  # as _segment_sums adds up a segment
    tail = jax.lax.dynamic_slice(buffer, (0, 0, (filled + valid) // seg * seg), (batch, channels, seg))
    return sums, state, tail



def _check_channels(channels: int) -> None:
    if channels > len(_CHANNEL_WEIGHTS):
        raise ValueError(f"BS.1770 weights cover at most {len(_CHANNEL_WEIGHTS)} channels, got {channels}")


def _gate(weighted: jax.Array, length: int, sample_rate: int, block_size: float) -> jax.Array:
    """Integrated loudness ``[B]`` of the first ``length`` samples of ``weighted [B, C, >= 0]`` (K-weighted),
    the rest counting as zeros."""
    return _gate_segments(_segment_sums(weighted, length, sample_rate, block_size), sample_rate, block_size)


def _segment_sums(weighted: jax.Array, length: int, sample_rate: int, block_size: float) -> jax.Array:
    """Sums of squares ``[B, C, covered // seg]`` of ``weighted [B, C, >= 0]`` over consecutive segments of
    ``seg = gcd(block, hop)`` samples, up to the end of the last block; samples from ``length`` on count
    as zeros (the last block is zero-filled past the signal's end)."""
    batch, channels, _ = weighted.shape
    block, hop, n_blocks = _block_geometry(length, sample_rate, block_size)
    covered = (n_blocks - 1) * hop + block
    if weighted.shape[-1] < covered:
        weighted = jnp.pad(weighted, ((0, 0), (0, 0), (0, covered - weighted.shape[-1])))
    inside = jnp.arange(covered) < length
    power = jnp.where(inside, weighted[..., :covered] ** 2, 0.0)
    seg = math.gcd(block, hop)
    return power.reshape(batch, channels, covered // seg, seg).sum(-1)


def _gate_segments(seg_sums: jax.Array, sample_rate: int, block_size: float, n_blocks=None) -> jax.Array:
    """Integrated loudness ``[B]`` from the segment sums of squares ``seg_sums [B, C, n]`` of
    :func:`_segment_sums`, ``n`` covering a whole number of blocks; with ``n_blocks`` (may be traced),
    only the first ``n_blocks`` blocks count and the segments after them are zeros."""
    channels = seg_sums.shape[1]
    # Blocks start every `hop` samples, so a block's sum of squares is block // seg consecutive segments.
    block, hop, _ = _block_geometry(0, sample_rate, block_size)
    seg = math.gcd(block, hop)
    block_sums = jax.lax.reduce_window(
        seg_sums, 0.0, jax.lax.add, (1, 1, block // seg), (1, 1, hop // seg), "VALID"
    )  # [B, C, n_blocks]
    z = block_sums * (1.0 / (block_size * sample_rate))

    weights = jnp.asarray(_CHANNEL_WEIGHTS[:channels], jnp.float32)[None, :, None]  # [1, C, 1]

    def lufs(channel_power):  # channel-weighted sum of mean squares -> LUFS, [B, C, n] -> [B, n]
        return -0.691 + 10.0 * jnp.log10((weights * channel_power).sum(1))

    def gated_mean(mask):  # mean of z over the kept blocks, 0 where none is kept: [B, C, 1]
        count = mask.sum(-1, keepdims=True)
        total = jnp.where(mask, z, 0.0).sum(-1, keepdims=True)
        return jnp.where(count > 0, total / jnp.maximum(count, 1), 0.0)

    block_loudness = lufs(z)[:, None, :]  # [B, 1, n_blocks]
    above_absolute = block_loudness > _ABSOLUTE_GATE
    if n_blocks is not None:
        above_absolute &= jnp.arange(z.shape[-1]) < n_blocks
    relative_gate = lufs(gated_mean(above_absolute)) + _RELATIVE_GATE  # [B, 1]
    kept = above_absolute & (block_loudness > relative_gate[:, :, None])
    # With no block kept the power is 0 and the loudness -inf, which the floor turns into
    # MIN_LOUDNESS; the tiny lower bound on the power keeps gradients finite there.
    integrated = lufs(jnp.maximum(gated_mean(kept), 1e-30))[:, 0]  # [B]
    return jnp.maximum(integrated, MIN_LOUDNESS)


_gate_segments_jit = jax.jit(_gate_segments, static_argnames=("sample_rate", "block_size"))
