"""``load_discriminator``: the original's ``discriminator/weights.pth`` as a jaxdac :class:`Discriminator`.

The original's training writes the discriminator with ``Discriminator.save(..., package=False)``
(audiotools' ``BaseModel``): a ``torch.save`` zip holding ``{"state_dict": ..., "metadata": {"kwargs":
...}}``, with ``weight_g`` / ``weight_v`` names (``parametrizations.weight.original0/1`` in files from
newer PyTorch exports, renamed on reading). It is read here without torch, by the same restricted
unpickler as generator checkpoints.

One quirk of that format: ``BaseModel.save`` records the constructor's *default* kwargs, whatever the
discriminator was built with, because it looks the values up as attributes that ``Discriminator`` does not
keep. A file of a non-default discriminator therefore describes itself wrongly, and its weights do not
even say which periods, rates or FFT sizes it ran at (those change no parameter shape). Pass the config
it was trained with as ``config=``; without it, a file whose weights do not fit its recorded kwargs is an
error that says so.
"""

from __future__ import annotations

import os
from pathlib import Path

from jaxdac.config import DiscriminatorConfig
from jaxdac.nn.discriminator import Discriminator
from jaxdac.weights import convert
from jaxdac.weights.torch_checkpoint import normalize_weight_norm_names, read_torch_checkpoint

__all__ = ["load_discriminator"]

_GENERATOR_PREFIXES = ("encoder.", "decoder.", "quantizer.")


def load_discriminator(path: str | os.PathLike, config: DiscriminatorConfig | None = None) -> Discriminator:
    """Read an original discriminator ``weights.pth`` (torch-free, no code run) into a :class:`Discriminator`.

    ``config`` overrides the kwargs recorded in the file (needed for a non-default discriminator saved by
    the original, see the module docstring). Errors name the file: :class:`CheckpointError` for a file
    that is not a readable PyTorch checkpoint (a random zip, a truncated file), :class:`ConversionError`
    for a checkpoint of another kind (a DAC generator's) or whose weights do not fit the config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no discriminator weights file at {path}")
    checkpoint = read_torch_checkpoint(path)  # CheckpointError names the path
    state_dict = normalize_weight_norm_names(checkpoint.state_dict)
    kwargs = (checkpoint.metadata or {}).get("kwargs")
    if any(k.startswith(_GENERATOR_PREFIXES) for k in state_dict) or (
        isinstance(kwargs, dict) and "encoder_dim" in kwargs
    ):
        raise convert.ConversionError(
            f"{path} holds DAC generator weights, not a discriminator; load it with jaxdac.load_model(path=...)"
        )
    if not any(k.startswith("discriminators.") for k in state_dict):
        some = ", ".join(list(state_dict)[:3]) or "no tensors at all"
        raise convert.ConversionError(f"{path} is not a discriminator checkpoint (its weights are {some})")
    recorded = None
    if config is None:
        if kwargs is None:
            raise convert.ConversionError(
                f"{path}: checkpoint has no metadata['kwargs'] describing the discriminator; "
                "pass the DiscriminatorConfig it was trained with as config="
            )
        try:
            config = recorded = DiscriminatorConfig.from_kwargs(kwargs)
        except (TypeError, ValueError) as e:
            raise convert.ConversionError(f"{path}: {e}") from None
    elif not isinstance(config, DiscriminatorConfig):
        raise TypeError(f"config must be a DiscriminatorConfig, got {type(config).__name__}")
    try:
        return convert.discriminator_from_state_dict(config, state_dict)
    except convert.ConversionError as e:
        found, wanted = _describe_weights(state_dict), _describe_config(config)
        hint = f"; the file holds the weights of {found}, the config describes {wanted}" if found != wanted else ""
        if recorded is not None:
            hint += ("; the config was read from the file's kwargs, which the original's Discriminator.save "
                     "records as the defaults whatever the model was: pass the discriminator's real "
                     "DiscriminatorConfig as config=")
        raise convert.ConversionError(f"{path}: {e}{hint}") from None


def _kinds(counts: dict[str, int], bands: set[int]) -> str:
    parts = [f"{n} {kind}{'s' if n > 1 else ''}" for kind, n in counts.items() if n]
    text = ", ".join(parts) or "no sub-discriminator"
    if counts.get("MRD"):
        text += f" with {'/'.join(map(str, sorted(bands)))} band{'s' if bands != {1} else ''}"
    return text


def _describe_weights(state_dict) -> str:
    """What the weights' shapes say: how many MPDs, MSDs and MRDs (periods, rates and FFT sizes change no
    shape, so they cannot be read off)."""
    counts, bands = {"MPD": 0, "MSD": 0, "MRD": 0}, set()
    index = 0
    while any(k.startswith(f"discriminators.{index}.") for k in state_dict):
        prefix = f"discriminators.{index}."
        first = state_dict.get(prefix + "convs.0.0.weight_v")
        if first is not None:
            counts["MPD" if first.ndim == 4 else "MSD"] += 1
        else:
            n = len({k.split(".")[3] for k in state_dict if k.startswith(prefix + "band_convs.")})
            counts["MRD"] += 1
            bands.add(n)
        index += 1
    return _kinds(counts, bands)


def _describe_config(config: DiscriminatorConfig) -> str:
    counts = {"MPD": len(config.periods), "MSD": len(config.rates), "MRD": len(config.fft_sizes)}
    return _kinds(counts, {len(config.bands)})
