"""Fast CPU replacement for torchaudio.functional.lfilter in the reference environment.

The reference environment runs torchaudio in its pure-Python mode (see install_reference.sh), where
lfilter loops over every sample in Python (~7 s per loudness measurement of 5 s of audio).
This module swaps in scipy.signal.lfilter, which evaluates the same difference equation in C.
scripts/install_reference.sh copies it into the environment with a .pth hook, so every Python process
there gets the fast path without importing anything itself. It runs only there (it imports torch).
"""
import numpy as np
import scipy.signal
import torch
import torchaudio.functional
import torchaudio.functional.filtering


def _lfilter(waveform, a_coeffs, b_coeffs, clamp=True, batching=True):
    if a_coeffs.ndim != 1:
        raise NotImplementedError("reference lfilter patch: only 1-D coefficients are supported")
    x = waveform.detach().cpu().numpy()
    a = a_coeffs.detach().cpu().numpy().astype(x.dtype)
    b = b_coeffs.detach().cpu().numpy().astype(x.dtype)
    y = scipy.signal.lfilter(b, a, x, axis=-1).astype(x.dtype, copy=False)
    out = torch.from_numpy(np.ascontiguousarray(y)).to(waveform.device)
    return out.clamp(-1.0, 1.0) if clamp else out


torchaudio.functional.lfilter = _lfilter
torchaudio.functional.filtering.lfilter = _lfilter
