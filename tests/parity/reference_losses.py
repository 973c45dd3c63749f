"""The ORIGINAL's training losses (dac 1.0.0 ``dac.nn.loss``, audiotools 0.7.2, librosa's mel filters).

Runs under the reference interpreter only. Used two ways:

* imported by ``scripts/make_fixtures_losses.py`` (the ``reference_*`` functions);
* as a script by ``tests/parity/test_losses_parity.py``: ``reference_losses.py IN.npz OUT.npz`` reads a
  JSON task list (``tasks``) and input arrays from IN.npz and writes one array per task output to OUT.npz.

Everything is the original's own code on ``AudioSignal``s built as scripts/train.py builds them
(``AudioSignal(audio, sample_rate)``, default STFT parameters); nothing is patched (the mel filters come
from librosa, as in the original's training). Argument order here is always (estimate, reference); the
original's ``SISDRLoss`` takes (reference, estimate), and is called so.
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch

torch.set_num_threads(2)


def _signal(x: np.ndarray, sample_rate: int, requires_grad: bool = False):
    from audiotools import AudioSignal

    tensor = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if requires_grad:
        tensor.requires_grad_(True)
    return AudioSignal(tensor, sample_rate), tensor


def _value_and_grad(loss_fn, estimate: np.ndarray, reference: np.ndarray, sample_rate: int, grad: bool):
    x, x_tensor = _signal(estimate, sample_rate, requires_grad=grad)
    y, _ = _signal(reference, sample_rate)
    value = loss_fn(x, y)
    if not grad:
        return value.detach().numpy().astype(np.float32), None
    value.backward()
    return value.detach().numpy().astype(np.float32), x_tensor.grad.numpy().astype(np.float32)


def reference_mel(estimate, reference, sample_rate: int, kwargs: dict, grad: bool = False):
    """``MelSpectrogramLoss(**kwargs)(AudioSignal(estimate), AudioSignal(reference))``; with ``grad`` also
    d loss / d estimate by autograd."""
    from dac.nn.loss import MelSpectrogramLoss

    return _value_and_grad(MelSpectrogramLoss(**kwargs), estimate, reference, sample_rate, grad)


def reference_stft(estimate, reference, sample_rate: int, kwargs: dict, grad: bool = False):
    from dac.nn.loss import MultiScaleSTFTLoss

    return _value_and_grad(MultiScaleSTFTLoss(**kwargs), estimate, reference, sample_rate, grad)


def reference_l1(estimate, reference, sample_rate: int, grad: bool = False):
    from dac.nn.loss import L1Loss

    return _value_and_grad(L1Loss(), estimate, reference, sample_rate, grad)


def reference_sisdr(estimate, reference, sample_rate: int, kwargs: dict, grad: bool = False):
    """``SISDRLoss(**kwargs)(reference, estimate)``: the original treats its first argument as the reference."""
    from dac.nn.loss import SISDRLoss

    loss = SISDRLoss(**kwargs)
    return _value_and_grad(lambda x, y: loss(y, x), estimate, reference, sample_rate, grad)


class _Replay(torch.nn.Module):
    """A stand-in discriminator that returns given outputs: fake ones for the all-zeros probe signal,
    real ones for the all-ones probe, so ``GANLoss``'s own code computes the losses from them."""

    def __init__(self, d_fake, d_real):
        super().__init__()
        self.d_fake, self.d_real = d_fake, d_real

    def forward(self, audio):
        return self.d_fake if float(audio.mean()) == 0.0 else self.d_real


def reference_gan(d_fake, d_real) -> dict[str, np.ndarray]:
    """``GANLoss.discriminator_loss`` and ``generator_loss`` on given discriminator outputs, with the
    gradients of the generator's losses w.r.t. every fake and real map."""
    from audiotools import AudioSignal
    from dac.nn.loss import GANLoss

    fake_t = [[torch.from_numpy(m).requires_grad_(True) for m in maps] for maps in d_fake]
    real_t = [[torch.from_numpy(m).requires_grad_(True) for m in maps] for maps in d_real]
    gan = GANLoss(_Replay(fake_t, real_t))
    fake_probe = AudioSignal(torch.zeros(1, 1, 16), 44100)
    real_probe = AudioSignal(torch.ones(1, 1, 16), 44100)
    out = {"disc": gan.discriminator_loss(fake_probe, real_probe).detach().numpy()}
    gen, feat = gan.generator_loss(fake_probe, real_probe)
    out["gen"], out["feat"] = gen.detach().numpy(), feat.detach().numpy()
    for name, value in (("gen", gen), ("feat", feat)):
        leaves = [m for maps in fake_t + real_t for m in maps]
        grads = torch.autograd.grad(value, leaves, allow_unused=True, retain_graph=True)
        grads = [np.zeros_like(m.detach().numpy()) if g is None else g.numpy() for m, g in zip(leaves, grads)]
        n = sum(len(maps) for maps in fake_t)
        out[f"{name}_grad_fake"] = grads[:n]
        out[f"{name}_grad_real"] = grads[n:]
    return out


def reference_mel_filters(sr: int, n_fft: int, n_mels: int, fmin: float, fmax) -> np.ndarray:
    """``AudioSignal.get_mel_filters``: librosa's ``filters.mel`` ``[n_mels, n_fft // 2 + 1]``."""
    from audiotools import AudioSignal

    return AudioSignal.get_mel_filters(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)


def run_task(task: dict, inputs) -> dict[str, np.ndarray]:
    """One task -> ``{suffix: array}``; the script writes ``<task name>/<suffix>``."""
    op = task["op"]
    if op == "mel_filters":
        return {"value": reference_mel_filters(task["sample_rate"], task["n_fft"], task["n_mels"], task["fmin"], task["fmax"])}
    if op == "gan":
        count = task["maps"]  # maps per sub-discriminator
        def unpack(prefix):
            return [[inputs[f"{task['input']}/{prefix}/{i}/{j}"] for j in range(n)] for i, n in enumerate(count)]
        out = reference_gan(unpack("fake"), unpack("real"))
        flat = {}
        for key, value in out.items():
            if isinstance(value, list):
                for k, g in enumerate(value):
                    flat[f"{key}/{k}"] = g
            else:
                flat[key] = value
        return flat
    estimate, reference = inputs[f"{task['input']}/estimate"], inputs[f"{task['input']}/reference"]
    sr, grad = task["sample_rate"], task.get("grad", False)
    if op == "mel":
        value, gradient = reference_mel(estimate, reference, sr, task["kwargs"], grad)
    elif op == "stft":
        value, gradient = reference_stft(estimate, reference, sr, task["kwargs"], grad)
    elif op == "l1":
        value, gradient = reference_l1(estimate, reference, sr, grad)
    elif op == "sisdr":
        value, gradient = reference_sisdr(estimate, reference, sr, task["kwargs"], grad)
    else:
        raise ValueError(f"unknown task {op!r}")
    return {"value": value} if gradient is None else {"value": value, "grad": gradient}


def main(in_path: str, out_path: str) -> None:
    inputs = np.load(in_path)
    tasks = json.loads(str(inputs["tasks"]))
    out = {}
    for task in tasks:
        for suffix, value in run_task(task, inputs).items():
            out[f"{task['name']}/{suffix}"] = value
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:3])
