"""Audio DSP as pure JAX functions on ``[B, C, T]`` arrays, matching the original's audiotools 0.7.2 numbers.

* :func:`loudness`: ITU-R BS.1770-4 gated integrated loudness (``AudioSignal.loudness``);
* :func:`resample`: windowed-sinc resampling between integer rates (``julius.resample_frac``);
* :class:`LoudnessMeter`, :class:`Resampler`: the same two on a stream of pieces, in memory bounded by
  a step of samples rather than by the signal's length, for preparing long files;
* :func:`stft`, :func:`istft`, :func:`mel_filterbank`, :func:`mel_spectrogram`: ``AudioSignal.stft``
  and ``AudioSignal.mel_spectrogram`` conventions.

Static parameters (sample rates, window sizes) are Python ints; every function is jit-compiled and can
be called inside a jitted training step. The two classes keep state between calls, so they run on the
host (numpy in and out) and call jitted steps of one shape. This package imports nothing else from jaxdac.
"""

from jaxdac.dsp.loudness import LoudnessMeter, loudness
from jaxdac.dsp.resample import Resampler, resample
from jaxdac.dsp.stft import istft, mel_filterbank, mel_spectrogram, stft

__all__ = [
    "LoudnessMeter",
    "Resampler",
    "istft",
    "loudness",
    "mel_filterbank",
    "mel_spectrogram",
    "resample",
    "stft",
]
