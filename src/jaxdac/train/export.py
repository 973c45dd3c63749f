"""Trained models back to the original's format (and to jaxdac's), written without torch.

    save_original(state, "exported")    # exported/dac/weights.pth, exported/discriminator/weights.pth

The files are what the original's training writes with ``save_to_folder(..., package=False)``:
``{"state_dict": ..., "metadata": {"kwargs": ...}}`` with ``weight_g``/``weight_v`` names, read by the
original's ``DAC.load`` / ``Discriminator.load`` (and ``load_from_folder``) and by ``jaxdac encode
--weights``. Unlike the original's own ``save``, the kwargs are the model's real configuration: the
original records its ``Discriminator`` kwargs and ``DAC.quantizer_dropout`` as their defaults whatever the
model was (it reads them back from attributes the classes do not keep), and loads non-strictly, so a
non-default discriminator saved by it loads as the default one with random weights.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxdac.nn.codec import DAC
from jaxdac.nn.discriminator import Discriminator
from jaxdac.weights import convert
from jaxdac.weights.torch_checkpoint import write_torch_checkpoint

__all__ = ["save_original", "save_generator_original", "save_discriminator_original"]


def _generator_file(model: DAC):
    return convert.to_state_dict(model), {"kwargs": model.config.to_kwargs()}


def _discriminator_file(model: Discriminator):
    # to_kwargs refuses widths the original cannot build.
    return convert.discriminator_to_state_dict(model), {"kwargs": model.config.to_kwargs()}


def save_generator_original(model: DAC, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``model`` as an original DAC ``weights.pth`` at ``path``, atomically."""
    return write_torch_checkpoint(path, *_generator_file(model), overwrite=overwrite)


def save_discriminator_original(model: Discriminator, path: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """``model`` as an original discriminator ``weights.pth`` at ``path``, atomically."""
    return write_torch_checkpoint(path, *_discriminator_file(model), overwrite=overwrite)


def save_original(state, folder: str | os.PathLike, *, overwrite: bool = False) -> tuple[Path, Path]:
    """Write a training state's two models as the original's training folder does:
    ``folder/dac/weights.pth`` and ``folder/discriminator/weights.pth``. Returns the two paths.

    Both files are prepared and checked (existing files are kept unless ``overwrite``; a discriminator
    the original cannot build is refused) before either is written.
    """
    folder = Path(folder)
    paths = folder / "dac" / "weights.pth", folder / "discriminator" / "weights.pth"
    if not overwrite:
        for path in paths:
            if path.exists():
                raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    files = _generator_file(state.generator_model()), _discriminator_file(state.discriminator_model())
    return tuple(write_torch_checkpoint(path, *file, overwrite=overwrite) for path, file in zip(paths, files))
