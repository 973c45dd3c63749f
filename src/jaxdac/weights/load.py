"""``load_model``: a ready :class:`~jaxdac.nn.DAC` from a release name, an original checkpoint or our file."""

from __future__ import annotations

import os
from pathlib import Path

from jaxdac.config import DACConfig
from jaxdac.nn.codec import DAC
from jaxdac.weights import convert


def load_checkpoint(path: str | os.PathLike) -> DAC:
    """Load an original PyTorch checkpoint (read without torch) or a jaxdac ``.safetensors`` file."""
    from jaxdac.weights.torch_checkpoint import normalize_weight_norm_names, read_torch_checkpoint

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no weights file at {path}")
    if convert.is_converted(path):
        return convert.load(path)
    checkpoint = read_torch_checkpoint(path)
    kwargs = (checkpoint.metadata or {}).get("kwargs")
    if kwargs is None:
        raise convert.ConversionError(
            f"{path}: checkpoint has no metadata['kwargs'] describing the model; "
            "only checkpoints written by the original's model.save() (or jaxdac convert) are supported"
        )
    try:
        config = DACConfig.from_kwargs(kwargs)
    except (TypeError, ValueError) as e:
        raise convert.ConversionError(f"{path}: {e}") from None
    try:
        return convert.from_state_dict(config, normalize_weight_norm_names(checkpoint.state_dict))
    except convert.ConversionError as e:
        raise convert.ConversionError(f"{path}: {e}") from None


def load_model(
    model_type: str = "44khz",
    bitrate: str = "8kbps",
    tag: str = "latest",
    *,
    path: str | os.PathLike | None = None,
) -> DAC:
    """A DAC model with weights.

    ``load_model("44khz", bitrate="8kbps")`` downloads (once, into the cache) and loads a released
    model; ``load_model(path=...)`` loads an original ``.pth`` checkpoint or a converted
    ``.safetensors`` file.
    """
    if path is None:
        from jaxdac.weights.pretrained import download

        path = download(model_type, bitrate, tag)
    return load_checkpoint(path)
