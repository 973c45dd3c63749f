"""Training and fine-tuning DAC: the original's losses, GAN step and checkpoint format, in JAX.

    from jaxdac import train
    discriminator = train.load_discriminator("discriminator/weights.pth")   # or Discriminator(config, rngs=...)
    state = train.init_state(generator, discriminator, train.StepConfig())
    state, metrics = train.train_step(state, audio, key)                     # audio [B, 1, T]
    train.save_original(state, "exported")                                  # the original's weights.pth files

Needs the ``train`` extra (``pip install "jaxdac[train]"``: optax, orbax-checkpoint, grain, ...).
Modules: ``losses`` (pure loss functions and their configs), ``step`` (state, step, optimisers),
``export`` (the original's file format).
"""

from __future__ import annotations

import importlib

# Public name -> module that defines it; imported on first use, so ``import jaxdac.train.losses`` stays light.
_EXPORTS = {
    "LossWeights": "jaxdac.train.losses",
    "MelLossConfig": "jaxdac.train.losses",
    "STFTLossConfig": "jaxdac.train.losses",
    "OptimizerConfig": "jaxdac.train.step",
    "StepConfig": "jaxdac.train.step",
    "TrainState": "jaxdac.train.step",
    "NonFiniteLossError": "jaxdac.train.step",
    "init_state": "jaxdac.train.step",
    "train_step": "jaxdac.train.step",
    "check_finite": "jaxdac.train.step",
    "METRICS": "jaxdac.train.step",
    "save_original": "jaxdac.train.export",
    "Discriminator": "jaxdac.nn.discriminator",
    "load_discriminator": "jaxdac.weights.discriminator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'jaxdac.train' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
