"""The ORIGINAL's training step, for the golden-fixture script and the live parity suite.

Imported only under the reference interpreter (torch, dac, audiotools). ``OriginalTrainer.step`` does what
the original's ``scripts/train.py::train_loop`` does with ``amp: false`` on one process, in the same order,
with the same objects: ``dac.model.DAC`` and ``dac.model.Discriminator`` in train mode, ``torch.optim.AdamW``
and ``ExponentialLR`` as built there from ``conf/base.yml``, ``dac.nn.loss`` losses, gradient clipping of 10
(discriminator) and 1e3 (generator). The batch transform is left out: callers pass the batch as the model
should see it (the transforms belong to the data pipeline, checked apart).
"""

from __future__ import annotations

import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch
from audiotools import AudioSignal

# conf/base.yml
LAMBDAS = {"mel/loss": 15.0, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0, "vq/commitment_loss": 0.25, "vq/codebook_loss": 1.0}
MEL = dict(
    n_mels=[5, 10, 20, 40, 80, 160, 320],
    window_lengths=[32, 64, 128, 256, 512, 1024, 2048],
    mel_fmin=[0, 0, 0, 0, 0, 0, 0],
    mel_fmax=[None] * 7,
    pow=1.0,
    clamp_eps=1.0e-5,
    mag_weight=0.0,
)
STFT = dict(window_lengths=[2048, 512])
ADAMW = dict(lr=1e-4, betas=(0.8, 0.99))
GAMMA = 0.999996


class OriginalTrainer:
    def __init__(self, generator, discriminator):
        from dac.nn import loss

        self.generator = generator
        self.discriminator = discriminator
        self.optimizer_g = torch.optim.AdamW(generator.parameters(), **ADAMW)
        self.optimizer_d = torch.optim.AdamW(discriminator.parameters(), **ADAMW)
        self.scheduler_g = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_g, GAMMA)
        self.scheduler_d = torch.optim.lr_scheduler.ExponentialLR(self.optimizer_d, GAMMA)
        self.waveform_loss = loss.L1Loss()
        self.stft_loss = loss.MultiScaleSTFTLoss(**STFT)
        self.mel_loss = loss.MelSpectrogramLoss(**MEL)
        self.gan_loss = loss.GANLoss(discriminator)

    def step(self, audio: np.ndarray) -> dict[str, float]:
        """One step on ``audio [B, 1, T]``; returns the logged metrics as floats. The gradients before
        clipping are left in ``self.gradients`` (``generator/<name>``, ``discriminator/<name>``)."""
        self.generator.train()
        self.discriminator.train()
        output = {}
        signal = AudioSignal(torch.from_numpy(np.ascontiguousarray(audio)), self.generator.sample_rate)

        out = self.generator(signal.audio_data, signal.sample_rate)
        recons = AudioSignal(out["audio"], signal.sample_rate)
        commitment_loss = out["vq/commitment_loss"]
        codebook_loss = out["vq/codebook_loss"]

        output["adv/disc_loss"] = self.gan_loss.discriminator_loss(recons, signal)
        self.optimizer_d.zero_grad()
        output["adv/disc_loss"].backward()
        self.gradients = _gradients(self.discriminator, "discriminator")
        output["other/grad_norm_d"] = torch.nn.utils.clip_grad_norm_(self.discriminator.parameters(), 10.0)
        self.optimizer_d.step()
        self.scheduler_d.step()

        output["stft/loss"] = self.stft_loss(recons, signal)
        output["mel/loss"] = self.mel_loss(recons, signal)
        output["waveform/loss"] = self.waveform_loss(recons, signal)
        output["adv/gen_loss"], output["adv/feat_loss"] = self.gan_loss.generator_loss(recons, signal)
        output["vq/commitment_loss"] = commitment_loss
        output["vq/codebook_loss"] = codebook_loss
        output["loss"] = sum([v * output[k] for k, v in LAMBDAS.items() if k in output])

        self.optimizer_g.zero_grad()
        output["loss"].backward()
        self.gradients.update(_gradients(self.generator, "generator"))
        output["other/grad_norm"] = torch.nn.utils.clip_grad_norm_(self.generator.parameters(), 1e3)
        self.optimizer_g.step()
        self.scheduler_g.step()

        output["other/learning_rate"] = self.optimizer_g.param_groups[0]["lr"]
        output["other/batch_size"] = signal.batch_size
        return {k: float(v) for k, v in sorted(output.items())}


def _gradients(model, prefix: str) -> dict[str, np.ndarray]:
    # Gradients by state-dict name (parameters and state-dict entries are the same tensors here).
    by_id = {id(p): p for p in model.parameters()}
    out = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        param = by_id[id(tensor)]
        out[f"{prefix}/{name}"] = param.grad.detach().numpy().astype(np.float32).copy()
    return out


def parameters(model) -> dict[str, np.ndarray]:
    """The state dict as float32 numpy arrays (a copy)."""
    return {k: v.detach().cpu().numpy().astype(np.float32).copy() for k, v in model.state_dict().items()}


def build_discriminator(kwargs: dict, weights: dict[str, np.ndarray], save_path=None):
    """``dac.model.Discriminator(**kwargs)`` with the given state dict (strictly). With ``save_path`` the
    weights make a round trip through the original's own file format (``save(package=False)``); its
    kwargs are written into the file as they are (the original's ``save`` would record the defaults)."""
    import dac

    model = dac.model.Discriminator(**kwargs)
    model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()}, strict=True)
    if save_path is not None:
        torch.save({"state_dict": model.state_dict(), "metadata": {"kwargs": dict(kwargs)}}, str(save_path))
        model = dac.model.Discriminator.load(str(save_path))
    return model


def run_case(case: str, steps: int, out, record=()) -> tuple[list[dict], dict[int, dict[str, np.ndarray]]]:
    """A case of tests/train_cases.py: seeded weights written as the original's files under ``out``
    (``dac/weights.pth`` through ``DAC.save``, ``discriminator/weights.pth``), then ``steps`` steps on the
    case's batch. Returns the metrics of every step and, after each step in ``record``, every parameter's
    update since the start (new minus initial) and the step's gradients before clipping, keyed
    ``update/generator/<name>``, ``grad/discriminator/<name>`` and so on."""
    from pathlib import Path

    import dac

    import train_cases
    from reference_model import build_original

    out = Path(out)
    torch.manual_seed(0)
    (out / "dac").mkdir(parents=True, exist_ok=True)
    (out / "discriminator").mkdir(parents=True, exist_ok=True)
    generator = build_original(train_cases.generator_config(case), train_cases.seed_of(case), out / "dac" / "weights.pth")
    kwargs = train_cases.discriminator_kwargs(case)
    shapes = {k: tuple(v.shape) for k, v in dac.model.Discriminator(**kwargs).state_dict().items()}
    discriminator = build_discriminator(
        kwargs, train_cases.discriminator_weights(shapes, case), out / "discriminator" / "weights.pth"
    )
    initial_g, initial_d = parameters(generator), parameters(discriminator)
    trainer = OriginalTrainer(generator, discriminator)
    audio = train_cases.batch(case)
    metrics, updates = [], {}
    for k in range(1, steps + 1):
        metrics.append(trainer.step(audio))
        if k in record:
            g, d = parameters(generator), parameters(discriminator)
            updates[k] = {f"update/generator/{n}": g[n] - initial_g[n] for n in g}
            updates[k].update({f"update/discriminator/{n}": d[n] - initial_d[n] for n in d})
            updates[k].update({f"grad/{n}": v for n, v in trainer.gradients.items()})
    return metrics, updates
