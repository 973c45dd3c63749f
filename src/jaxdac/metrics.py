"""The original's evaluation metrics as pure, batched, jittable JAX functions.

The original's ``scripts/evaluate.py`` scores a reconstruction against its reference, one file pair at
a time: both signals (all channels, ``[1, C, T]``) are resampled with julius to 22.05 and 44.1 kHz,
and at each rate it reports

* ``mel-22k`` / ``mel-44k``: ``MelSpectrogramLoss()`` at the class's defaults, which are NOT training's
  conf/base.yml (:data:`EVAL_MEL`: two scales, 150 mels on 2048-sample windows and 80 on 512, hop
  window // 4, ``L1(log10(clamp(mel, 1e-5) ** 2)) + L1(mel)``);
* ``stft-22k`` / ``stft-44k``: ``MultiScaleSTFTLoss()`` (:data:`EVAL_STFT`: windows 2048 and 512, the
  same log and magnitude terms on the STFT magnitude);
* ``waveform-22k`` / ``waveform-44k``: ``L1Loss()``, the mean absolute sample difference;
* ``sisdr-22k`` / ``sisdr-44k``: ``SISDRLoss()``, i.e. the NEGATIVE scale-invariant SDR in dB (lower is
  better, like the others; the paper's tables print SI-SDR, its negation). Each item's channels are
  concatenated into one signal first, as there;
* ViSQOL (``visqol-audio-*``, ``visqol-speech-*``): not provided; no ViSQOL package can be installed
  from the registries jaxdac supports.

:func:`batch_metrics` computes all eight with those names for a batch, one value per item: each item's
value is what ``get_metrics`` gives for that item alone. :func:`metrics_at_rate` is the same without
the resampling, and the four functions below it (:func:`mel_distance`, :func:`stft_distance`,
:func:`waveform_distance`, :func:`neg_sisdr`) are the single metrics. All take ``estimate`` first and
``reference`` second, audio ``[B, C, T]``, as :mod:`jaxdac.train.losses` does.

Items of different lengths share one padded batch through ``lengths`` (``[B]`` valid samples each): the
values are those of each item cut to its length, not of the padding. The padded tail is ignored
exactly, not approximately: before resampling it is replaced by the item's last sample (julius
extends a signal so), before each STFT by the reflection ``torch.stft`` pads with, and frames and
samples past the end are left out of every mean. So one compiled program serves any lengths up to
the padded size (the ``jaxdac evaluate`` command pads files to a few bucket sizes).

:func:`validation_metrics` is the original's validation loop (``val_loop`` in scripts/train.py): the
batch means of the TRAINING losses (base.yml settings), under the names it logs.

PESQ and STOI (:func:`pesq`, :func:`stoi`) are audiotools.metrics.quality's: on the mono mix, PESQ
wide-band after resampling to 16 kHz, STOI at the given rate. They run on the host through the
``pesq`` and ``pystoi`` packages (``pip install "jaxdac[metrics]"``).

:func:`summarize` gives the mean, standard deviation and 95% confidence interval (Student's t) of a
metric over files.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxdac.dsp.resample import resample, resampled_length
from jaxdac.dsp.stft import mel_filterbank, stft
from jaxdac.train.losses import MelLossConfig, STFTLossConfig, l1_loss, mel_loss, stft_loss

__all__ = [
    "EVAL_MEL",
    "EVAL_RATES",
    "EVAL_STFT",
    "METRIC_NAMES",
    "MissingPackageError",
    "RATE_TAGS",
    "Summary",
    "batch_metrics",
    "check_speech_packages",
    "mel_distance",
    "metrics_at_rate",
    "min_length",
    "native_min_length",
    "neg_sisdr",
    "pesq",
    "resample_valid",
    "stft_distance",
    "stoi",
    "summarize",
    "t_quantile",
    "validation_metrics",
    "waveform_distance",
]

# scripts/evaluate.py builds its losses with the classes' defaults (dac.nn.loss), not conf/base.yml's.
EVAL_MEL = MelLossConfig(
    n_mels=(150, 80), window_lengths=(2048, 512), mel_fmin=(0.0, 0.0), mel_fmax=(None, None),
    clamp_eps=1e-5, mag_weight=1.0, log_weight=1.0, pow=2.0,
)
EVAL_STFT = STFTLossConfig(window_lengths=(2048, 512), clamp_eps=1e-5, mag_weight=1.0, log_weight=1.0, pow=2.0)
EVAL_RATES = (22050, 44100)
RATE_TAGS = {22050: "22k", 44100: "44k"}
_METRICS = ("mel", "stft", "waveform", "sisdr")
# The original's column names and order: per rate, mel, stft, waveform, sisdr (then ViSQOL, not here).
METRIC_NAMES = tuple(f"{metric}-{RATE_TAGS[rate]}" for rate in EVAL_RATES for metric in _METRICS)

_EPS = 1e-8  # SISDRLoss's


class MissingPackageError(ImportError):
    """An optional package (``pesq``, ``pystoi``) a metric needs is not installed."""


# --- shapes and lengths ---------------------------------------------------------------------------------


def min_length(mel: MelLossConfig = EVAL_MEL, stft_config: STFTLossConfig = EVAL_STFT) -> int:
    """Fewest samples (at the rate the metrics run at) the spectral metrics accept: more than half the
    largest window, which ``torch.stft`` reflect-pads (1025 at the evaluation settings, 46 ms at 22.05 kHz)."""
    return max(max(mel.window_lengths), max(stft_config.window_lengths)) // 2 + 1


def native_min_length(sample_rate: int) -> int:
    """Fewest samples at ``sample_rate`` that :func:`batch_metrics` accepts: resampled to each of
    :data:`EVAL_RATES`, at least :func:`min_length` remain (1025 at 22.05 kHz: 2050 samples at 44.1 kHz)."""
    need = min_length()

    def enough(n: int) -> bool:
        return all(resampled_length(n, sample_rate, rate) >= need for rate in EVAL_RATES)

    n = max(1, math.ceil(need * sample_rate / min(EVAL_RATES)))
    while n > 1 and enough(n - 1):
        n -= 1
    while not enough(n):
        n += 1
    return n


def _check_pair(owner: str, estimate, reference) -> tuple[int, int, int]:
    x_shape, y_shape = np.shape(estimate), np.shape(reference)
    if len(x_shape) != 3 or x_shape != y_shape:
        raise ValueError(f"{owner}: estimate and reference must be audio [B, C, T] of one shape, got {x_shape} and {y_shape}")
    if min(x_shape) < 1:
        raise ValueError(f"{owner}: empty audio {x_shape}")
    return x_shape


def _check_lengths(owner: str, lengths, batch: int, total: int, minimum: int):
    """``lengths`` as int32 ``[B]`` (None stays None). Concrete values are checked to lie in
    ``minimum..total``; traced ones (inside the caller's jit) cannot be, and are the caller's promise."""
    if lengths is None:
        if total < minimum:
            raise ValueError(f"{owner}: needs at least {minimum} samples per signal, got {total}")
        return None
    if np.shape(lengths) != (batch,):
        raise ValueError(f"{owner}: lengths must have one entry per item, shape ({batch},), got {np.shape(lengths)}")
    if not isinstance(lengths, jax.core.Tracer):
        values = np.asarray(lengths)
        if not np.issubdtype(values.dtype, np.integer):
            raise ValueError(f"{owner}: lengths must be integers, got {values.dtype}")
        if values.min() < minimum or values.max() > total:
            raise ValueError(f"{owner}: lengths must lie between {minimum} and the padded length {total}, got "
                             f"{values.min()}..{values.max()}")
    return jnp.asarray(lengths, jnp.int32)


def _check_rate(owner: str, sample_rate) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise ValueError(f"{owner}: sample_rate must be a positive integer (a static value), got {sample_rate!r}")
    return int(sample_rate)


def _float(x) -> jax.Array:
    x = jnp.asarray(x)
    return x.astype(jnp.float64 if x.dtype == jnp.float64 else jnp.float32)


def _valid_mask(lengths: jax.Array, size: int) -> jax.Array:
    """``[B, size]``: True where the position is below the item's length."""
    return jnp.arange(size)[None, :] < lengths[:, None]


def _gather_time(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x [B, C, L]`` read at per-item sample positions ``index [B, L']`` -> ``[B, C, L']``."""
    index = jnp.broadcast_to(index[:, None, :], (x.shape[0], x.shape[1], index.shape[-1]))
    return jnp.take_along_axis(x, index, axis=-1)


def _reflect_tail(x: jax.Array, lengths: jax.Array, extra: int) -> jax.Array:
    """``x [B, C, L]`` (item b valid up to ``lengths[b]``) -> ``[B, C, L + extra]`` where the samples
    after each item's end are its reflection, ``x[n + k] = x[n - 2 - k]`` (``torch.stft``'s reflect padding
    at the end of a signal of ``n`` samples), for the first ``extra`` of them.

    A centred STFT frame of a valid position reads at most ``window // 2`` samples past the end, all of
    them reflections when ``extra >= window // 2``: so the valid frames equal those of the signal cut
    to ``n`` samples. Positions past the reflection hold other samples of the item (never read by a
    valid frame).
    """
    size = x.shape[-1] + extra
    i = jnp.arange(size)[None, :]
    n = lengths[:, None]
    source = jnp.where(i < n, i, 2 * (n - 1) - i)
    return _gather_time(x, jnp.clip(source, 0, x.shape[-1] - 1))


def _edge_extend(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Every sample after an item's end replaced by its last sample, as julius extends a signal before
    resampling: then the resampled buffer's first ``floor(new * n / old)`` samples are those of the cut
    signal."""
    i = jnp.arange(x.shape[-1])[None, :]
    return _gather_time(x, jnp.minimum(i, lengths[:, None] - 1))


def _resampled_lengths(lengths: jax.Array, old_sr: int, new_sr: int) -> jax.Array:
    """``floor(new_sr * n / old_sr)`` per item, in int32 without overflow for any n (julius's length)."""
    gcd = math.gcd(old_sr, new_sr)
    old, new = old_sr // gcd, new_sr // gcd
    return (lengths // old) * new + ((lengths % old) * new) // old


# --- single metrics at one rate ----------------------------------------------------------------------


def _masked_mean(d: jax.Array, frame_mask: jax.Array | None) -> jax.Array:
    """Per-item mean of ``d [B, C, K, F]`` over channels, bins and the valid frames -> ``[B]``."""
    if frame_mask is None:
        return jnp.mean(d, axis=(1, 2, 3))
    mask = frame_mask[:, None, None, :]
    count = jnp.sum(frame_mask, axis=1) * d.shape[1] * d.shape[2]
    return jnp.sum(jnp.where(mask, d, 0.0), axis=(1, 2, 3)) / count


def _spectral_distance(a, b, config, frame_mask) -> jax.Array:
    """``log_weight * L1(log10(clamp(a) ** pow), ...) + mag_weight * L1(a, b)`` per item (L1 the mean
    absolute difference; ``log10(c ** pow)`` computed as ``pow * log10(c)``, the same number)."""
    total = jnp.zeros(a.shape[0], a.real.dtype)
    if config.log_weight != 0:
        log_a = config.pow * jnp.log10(jnp.maximum(a, config.clamp_eps))
        log_b = config.pow * jnp.log10(jnp.maximum(b, config.clamp_eps))
        total = total + config.log_weight * _masked_mean(jnp.abs(log_a - log_b), frame_mask)
    if config.mag_weight != 0:
        total = total + config.mag_weight * _masked_mean(jnp.abs(a - b), frame_mask)
    return total


def _magnitudes(x, y, lengths, window_lengths, window) -> dict[int, tuple]:
    """``{window: (|STFT x|, |STFT y|, valid-frame mask or None)}`` (hop ``window // 4``, centred), each
    window once."""
    if lengths is not None:
        extra = max(window_lengths) // 2
        x, y = _reflect_tail(x, lengths, extra), _reflect_tail(y, lengths, extra)
    out = {}
    for w in dict.fromkeys(window_lengths):
        hop = w // 4
        mag_x = jnp.abs(stft(x, w, hop, window))  # [B, C, bins, frames]
        mag_y = jnp.abs(stft(y, w, hop, window))
        # torch.stft(center=True) gives 1 + n // hop frames for n samples.
        mask = None if lengths is None else _valid_mask(1 + lengths // hop, mag_x.shape[-1])
        out[w] = (mag_x, mag_y, mask)
    return out


@functools.lru_cache(maxsize=None)
def _filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> np.ndarray:
    bank = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)  # librosa's Slaney filters, as audiotools
    bank.setflags(write=False)
    return bank


def _mel_from(magnitudes: dict, sample_rate: int, config: MelLossConfig) -> jax.Array:
    total = None
    for w, n_mels, fmin, fmax in zip(config.window_lengths, config.n_mels, config.mel_fmin, config.mel_fmax):
        mag_x, mag_y, mask = magnitudes[w]
        bank = _filterbank(sample_rate, w, n_mels, float(fmin), None if fmax is None else float(fmax))
        mel_x, mel_y = (jnp.einsum("mk,bckf->bcmf", bank, m, precision=jax.lax.Precision.HIGHEST) for m in (mag_x, mag_y))
        term = _spectral_distance(mel_x, mel_y, config, mask)
        total = term if total is None else total + term
    return total


def _stft_from(magnitudes: dict, config: STFTLossConfig) -> jax.Array:
    total = None
    for w in config.window_lengths:
        mag_x, mag_y, mask = magnitudes[w]
        term = _spectral_distance(mag_x, mag_y, config, mask)
        total = term if total is None else total + term
    return total


@functools.partial(jax.jit, static_argnames=("sample_rate", "config"))
def _mel_distance(x, y, lengths, sample_rate: int, config: MelLossConfig) -> jax.Array:
    return _mel_from(_magnitudes(x, y, lengths, config.window_lengths, config.window_type), sample_rate, config)


def mel_distance(estimate, reference, sample_rate: int, lengths=None, config: MelLossConfig = EVAL_MEL) -> jax.Array:
    """Mel distance per item, ``[B]``: ``MelSpectrogramLoss(**config)`` on each item alone (``[1, C, T]``).

    Audio ``[B, C, T]`` at ``sample_rate`` (static); ``lengths`` (optional ``[B]``) valid samples per item,
    each more than half the largest window. Defaults to scripts/evaluate.py's settings (:data:`EVAL_MEL`);
    ``MelLossConfig()`` gives training's.
    """
    sample_rate = _check_rate("mel_distance", sample_rate)
    batch, _, total = _check_pair("mel_distance", estimate, reference)
    lengths = _check_lengths("mel_distance", lengths, batch, total, max(config.window_lengths) // 2 + 1)
    return _mel_distance(_float(estimate), _float(reference), lengths, sample_rate, config)


@functools.partial(jax.jit, static_argnames=("config",))
def _stft_distance(x, y, lengths, config: STFTLossConfig) -> jax.Array:
    return _stft_from(_magnitudes(x, y, lengths, config.window_lengths, config.window_type), config)


def stft_distance(estimate, reference, lengths=None, config: STFTLossConfig = EVAL_STFT) -> jax.Array:
    """Multi-scale STFT distance per item, ``[B]``: ``MultiScaleSTFTLoss(**config)`` on each item alone.
    No sample rate: the STFT distance does not depend on it."""
    batch, _, total = _check_pair("stft_distance", estimate, reference)
    lengths = _check_lengths("stft_distance", lengths, batch, total, max(config.window_lengths) // 2 + 1)
    return _stft_distance(_float(estimate), _float(reference), lengths, config)


@jax.jit
def _waveform_distance(x, y, lengths) -> jax.Array:
    d = jnp.abs(x - y)
    if lengths is None:
        return jnp.mean(d, axis=(1, 2))
    mask = _valid_mask(lengths, x.shape[-1])[:, None, :]
    return jnp.sum(jnp.where(mask, d, 0.0), axis=(1, 2)) / (lengths * x.shape[1])


def waveform_distance(estimate, reference, lengths=None) -> jax.Array:
    """Waveform L1 per item, ``[B]``: ``L1Loss()`` (mean ``|estimate - reference|`` over channels and
    samples) on each item alone."""
    batch, _, total = _check_pair("waveform_distance", estimate, reference)
    lengths = _check_lengths("waveform_distance", lengths, batch, total, 1)
    return _waveform_distance(_float(estimate), _float(reference), lengths)


@jax.jit
def _neg_sisdr(x, y, lengths) -> jax.Array:
    # SISDRLoss: each item's channels flattened into one signal of C * n samples (reshape(nb, 1, -1)).
    if lengths is None:
        mask = jnp.ones(x.shape, bool)
        count = x.shape[1] * x.shape[2]
    else:
        mask = jnp.broadcast_to(_valid_mask(lengths, x.shape[-1])[:, None, :], x.shape)
        count = lengths * x.shape[1]
    axes = (1, 2)

    def total(v):
        return jnp.sum(jnp.where(mask, v, 0.0), axis=axes)

    # Zero mean, then project the estimate on the reference: e_true = scale * reference is the target,
    # the rest distortion; eps is added to the projection's numerator and denominator, as there.
    references = y - (total(y) / count)[:, None, None]
    estimates = x - (total(x) / count)[:, None, None]
    reference_energy = total(references**2) + _EPS
    reference_on_estimate = total(estimates * references) + _EPS
    scale = (reference_on_estimate / reference_energy)[:, None, None]
    e_true = scale * references
    e_res = estimates - e_true
    return -10.0 * jnp.log10(total(e_true**2) / total(e_res**2) + _EPS)


def neg_sisdr(estimate, reference, lengths=None) -> jax.Array:
    """Negative SI-SDR in dB per item, ``[B]``: ``SISDRLoss()(reference, estimate)`` on each item alone
    (zero-mean, scale-invariant, no clipping), scripts/evaluate.py's ``sisdr-*`` numbers. Lower is
    better; SI-SDR itself is ``-neg_sisdr``."""
    batch, _, total = _check_pair("neg_sisdr", estimate, reference)
    lengths = _check_lengths("neg_sisdr", lengths, batch, total, 1)
    return _neg_sisdr(_float(estimate), _float(reference), lengths)


# --- all metrics ------------------------------------------------------------------------------------


def resample_valid(audio, sample_rate: int, new_rate: int, lengths=None):
    """``audio [B, C, T]`` resampled as julius does (:func:`jaxdac.dsp.resample`) to ``new_rate``:
    ``(audio [B, C, T'], lengths')``. With ``lengths`` each item is resampled as if cut to its length
    (its tail first replaced by its last sample), and ``lengths'`` are the resampled items' lengths;
    without, ``lengths'`` is None. Jittable (rates static)."""
    audio = _float(audio)
    if new_rate == sample_rate:
        return audio, lengths
    if lengths is not None:
        lengths = jnp.asarray(lengths, jnp.int32)
        audio = _edge_extend(audio, lengths)
        lengths = _resampled_lengths(lengths, sample_rate, new_rate)
    return resample(audio, sample_rate, new_rate), lengths


@functools.partial(jax.jit, static_argnames=("sample_rate",))
def _metrics_at_rate(x, y, lengths, sample_rate: int) -> dict[str, jax.Array]:
    # The mel and STFT distances use the same windows (2048 and 512, Hann): each STFT is taken once.
    assert EVAL_MEL.window_type == EVAL_STFT.window_type
    magnitudes = _magnitudes(x, y, lengths, EVAL_MEL.window_lengths + EVAL_STFT.window_lengths, EVAL_MEL.window_type)
    return {
        "mel": _mel_from(magnitudes, sample_rate, EVAL_MEL),
        "stft": _stft_from(magnitudes, EVAL_STFT),
        "waveform": _waveform_distance(x, y, lengths),
        "sisdr": _neg_sisdr(x, y, lengths),
    }


def metrics_at_rate(estimate, reference, sample_rate: int, lengths=None) -> dict[str, jax.Array]:
    """``{"mel", "stft", "waveform", "sisdr"}`` per item (``[B]`` each) at the signals' own rate, with
    scripts/evaluate.py's settings; no resampling."""
    sample_rate = _check_rate("metrics_at_rate", sample_rate)
    batch, _, total = _check_pair("metrics_at_rate", estimate, reference)
    lengths = _check_lengths("metrics_at_rate", lengths, batch, total, min_length())
    return _metrics_at_rate(_float(estimate), _float(reference), lengths, sample_rate)


@functools.partial(jax.jit, static_argnames=("sample_rate",))
def _batch_metrics(x, y, lengths, sample_rate: int) -> dict[str, jax.Array]:
    out = {}
    for rate in EVAL_RATES:
        x_r, n = resample_valid(x, sample_rate, rate, lengths)
        y_r, _ = resample_valid(y, sample_rate, rate, lengths)
        for name, value in _metrics_at_rate(x_r, y_r, n, rate).items():
            out[f"{name}-{RATE_TAGS[rate]}"] = value
    return out


def batch_metrics(estimate, reference, sample_rate: int, lengths=None) -> dict[str, jax.Array]:
    """scripts/evaluate.py's metrics of each item, under its names: ``{"mel-22k", "stft-22k",
    "waveform-22k", "sisdr-22k", "mel-44k", ..., "sisdr-44k"}`` (:data:`METRIC_NAMES`), ``[B]`` float32 each.

    ``estimate`` (the reconstruction) and ``reference``: audio ``[B, C, T]`` at ``sample_rate`` (a static
    Python int), resampled to 22.05 and 44.1 kHz as the original (julius) does. ``lengths`` (``[B]``,
    optional): valid samples per item in a padded batch. Each item, cut to its length, must last more
    than 1024 samples at 22.05 kHz (46 ms); the original's STFT refuses shorter signals. Jittable:
    ``jax.jit(batch_metrics, static_argnums=2)``, or call it inside a jitted step.
    """
    sample_rate = _check_rate("batch_metrics", sample_rate)
    batch, _, total = _check_pair("batch_metrics", estimate, reference)
    shortest = min(resampled_length(total, sample_rate, rate) for rate in EVAL_RATES)
    if lengths is None:
        if shortest < min_length():
            raise ValueError(f"batch_metrics: needs more than {min_length() - 1} samples at {min(EVAL_RATES)} Hz "
                             f"({total} samples at {sample_rate} Hz give {shortest})")
    else:
        lengths = _check_lengths("batch_metrics", lengths, batch, total, native_min_length(sample_rate))
    out = _batch_metrics(_float(estimate), _float(reference), lengths, sample_rate)
    return {name: out[name] for name in METRIC_NAMES}  # jit returns dicts in sorted key order


def validation_metrics(
    estimate,
    reference,
    sample_rate: int,
    mel_config: MelLossConfig = MelLossConfig(),
    stft_config: STFTLossConfig = STFTLossConfig(),
) -> dict[str, jax.Array]:
    """The original's validation metrics (scripts/train.py ``val_loop``): ``{"loss", "mel/loss",
    "stft/loss", "waveform/loss"}``, float32 scalars, the batch means of the training losses at
    conf/base.yml's settings (``loss`` is the mel loss, as there). ``estimate`` and ``reference``
    ``[B, C, T]`` of one shape; jittable with ``sample_rate`` and the configs static."""
    mel = mel_loss(estimate, reference, sample_rate, mel_config)
    return {
        "loss": mel,
        "mel/loss": mel,
        "stft/loss": stft_loss(estimate, reference, stft_config),
        "waveform/loss": l1_loss(estimate, reference),
    }


# --- PESQ and STOI (host, optional packages) ---------------------------------------------------------


def _require(module: str, metric: str):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingPackageError(
            f"{metric} needs the {module!r} package, which is not installed: pip install \"jaxdac[metrics]\""
        ) from None


def check_speech_packages() -> None:
    """Raise :class:`MissingPackageError` (saying how to install them) unless PESQ's and STOI's packages import."""
    _require("pesq", "PESQ")
    _require("pystoi", "STOI")


def _mono(audio, sample_rate: int, new_rate: int | None = None) -> np.ndarray:
    """audiotools' ``to_mono()`` (the channel mean) then, if asked, its julius ``resample``: ``[B, T]``."""
    audio = jnp.asarray(audio, jnp.float32)
    if audio.ndim != 3:
        raise ValueError(f"expected audio [B, C, T], got shape {audio.shape}")
    mono = jnp.mean(audio, axis=1, keepdims=True)
    if new_rate is not None and new_rate != sample_rate:
        mono = resample(mono, sample_rate, new_rate)
    return np.asarray(mono[:, 0], np.float32)


def pesq(estimate, reference, sample_rate: int, mode: str = "wb", target_rate: int = 16000,
         on_error: str = "raise") -> np.ndarray:
    """PESQ (ITU-T P.862.2 MOS-LQO) per item, ``[B]`` float64: ``audiotools.metrics.quality.pesq``.

    Both signals ``[B, C, T]`` at ``sample_rate`` are mixed to mono, resampled to ``target_rate`` (16 kHz;
    8 kHz for ``mode="nb"`` if wanted) and scored by the ``pesq`` package. ``on_error="nan"`` gives NaN
    for an item the package cannot score (no speech found, too short) instead of raising ValueError.
    Host code (not jittable). Needs ``pip install "jaxdac[metrics]"``.
    """
    package = _require("pesq", "PESQ")
    if on_error not in ("raise", "nan"):
        raise ValueError(f"on_error must be 'raise' or 'nan', got {on_error!r}")
    _check_pair("pesq", estimate, reference)
    est = _mono(estimate, sample_rate, target_rate)
    ref = _mono(reference, sample_rate, target_rate)
    scores = []
    for i in range(est.shape[0]):
        try:
            scores.append(float(package.pesq(target_rate, ref[i], est[i], mode)))
        except package.PesqError as e:
            if on_error == "raise":
                raise ValueError(f"PESQ cannot score item {i}: {type(e).__name__}: {e}") from None
            scores.append(math.nan)
    return np.asarray(scores, np.float64)


def stoi(estimate, reference, sample_rate: int, extended: bool = False) -> np.ndarray:
    """STOI per item (``extended``: ESTOI), ``[B]`` float64: ``audiotools.metrics.quality.stoi``, the
    ``pystoi`` package on the mono mixes at ``sample_rate`` (it resamples to 10 kHz itself). Host code.
    Needs ``pip install "jaxdac[metrics]"``."""
    package = _require("pystoi", "STOI")
    _check_pair("stoi", estimate, reference)
    est, ref = _mono(estimate, sample_rate), _mono(reference, sample_rate)
    return np.asarray([float(package.stoi(ref[i], est[i], sample_rate, extended=extended))
                       for i in range(est.shape[0])], np.float64)


# --- summaries ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Summary:
    """A metric over ``n`` files: mean, sample standard deviation (ddof 1) and the 95% confidence
    interval of the mean, ``mean -/+ t(0.975, n - 1) * std / sqrt(n)``. NaN where undefined (n < 2)."""

    n: int
    mean: float
    std: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "std": self.std, "ci95": [self.ci_low, self.ci_high]}


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz; Numerical Recipes' betacf)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        m2 = 2 * m
        for numerator in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)),
                          -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def _t_cdf(t: float, dof: float) -> float:
    tail = 0.5 * _betainc(dof / 2.0, 0.5, dof / (dof + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, dof: float) -> float:
    """Quantile of Student's t distribution with ``dof`` degrees of freedom (``scipy.stats.t.ppf``),
    by bisection on its CDF (the regularized incomplete beta function), to about 1e-12."""
    if not 0.0 < p < 1.0 or not dof > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and dof > 0, got p={p}, dof={dof}")
    if p < 0.5:
        return -t_quantile(1.0 - p, dof)
    low, high = 0.0, 1.0
    while _t_cdf(high, dof) < p:
        high *= 2.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if _t_cdf(mid, dof) < p:
            low = mid
        else:
            high = mid
        if high - low < 1e-12 * max(1.0, high):
            break
    return 0.5 * (low + high)


def summarize(values: Sequence[float]) -> Summary:
    """Mean, std and 95% confidence interval of ``values``; NaNs (a metric that could not be computed
    for a file) are left out and ``n`` counts the rest. An infinite value (the SI-SDR of a reconstruction
    identical to its reference is -inf, as in the original) makes the mean infinite and the rest NaN."""
    v = np.asarray([x for x in np.asarray(values, np.float64).ravel() if not math.isnan(x)])
    n = int(v.size)
    if n == 0:
        return Summary(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    if n < 2 or not math.isfinite(mean):
        return Summary(n, mean, math.nan, math.nan, math.nan)
    std = float(v.std(ddof=1))
    half = t_quantile(0.975, n - 1) * std / math.sqrt(n)
    return Summary(n, mean, std, mean - half, mean + half)
