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


def release_config(model_type: str = "44khz", bitrate: str = "8kbps") -> DACConfig:
    """The configuration of a released model (``ValueError`` for a combination that was not released)."""
    from jaxdac.config import PRESETS
    from jaxdac.weights.pretrained import resolve_tag

    resolve_tag(model_type, bitrate)
    model_type, bitrate = model_type.lower(), bitrate.lower()
    return PRESETS[f"dac_{model_type}" + ("" if bitrate == "8kbps" else f"_{bitrate}")]


def _summary(config: DACConfig) -> str:
    return f"{config.sample_rate} Hz, hop {config.hop_length}, {config.n_codebooks} codebooks"


_TYPE_OF_RATE = {44100: "44khz", 24000: "24khz", 16000: "16khz"}


def check_release(config: DACConfig, model_type: str | None = None, bitrate: str | None = None, *,
                  name: str = "the weights") -> None:
    """Raise ``ValueError`` unless ``config`` has the sample rate, hop and codebook count of the release
    that ``model_type`` / ``bitrate`` name. ``None`` means not asked for: without a model type the
    weights' own (from their sample rate) is taken; without a bitrate any release of the type fits."""
    from jaxdac.weights.pretrained import RELEASES

    if model_type is None and bitrate is None:
        return
    if model_type is None:
        model_type = _TYPE_OF_RATE.get(config.sample_rate)
        if model_type is None:
            raise ValueError(f"{name} holds a {_summary(config)} model, not a {bitrate} release")
    model_type = model_type.lower()
    if bitrate is None:
        release_config(model_type)  # a known type
        bitrates = sorted(b for t, b in RELEASES if t == model_type)
    else:
        release_config(model_type, bitrate)  # a released combination
        bitrates = [bitrate.lower()]
    wanted = sorted((release_config(model_type, b) for b in bitrates), key=lambda c: c.n_codebooks)
    key = lambda c: (c.sample_rate, c.hop_length, c.n_codebooks)
    if any(key(config) == key(w) for w in wanted):
        return
    w = wanted[0]
    codebooks = " or ".join(str(c.n_codebooks) for c in wanted)
    label = f"the {model_type} {bitrates[0]} release" if len(bitrates) == 1 else f"a {model_type} release"
    raise ValueError(f"{name} holds a {_summary(config)} model, not {label} "
                     f"({w.sample_rate} Hz, hop {w.hop_length}, {codebooks} codebooks)")


def load_model(
    model_type: str | None = None,
    bitrate: str | None = None,
    tag: str | None = None,
    *,
    path: str | os.PathLike | None = None,
) -> DAC:
    """A DAC model with weights.

    ``load_model("44khz", bitrate="8kbps")`` downloads (once, into the cache) and loads a released
    model (defaults: ``"44khz"``, ``"8kbps"``, tag ``"latest"``); ``load_model(path=...)`` loads an
    original ``.pth`` checkpoint or a converted ``.safetensors`` file. With ``path``, a ``model_type``
    or ``bitrate`` given too must describe those weights (``ValueError`` otherwise), and ``tag``, which
    names a release, cannot be given.
    """
    if path is None:
        from jaxdac.weights.pretrained import download

        return load_checkpoint(download(model_type or "44khz", bitrate or "8kbps", tag or "latest"))
    if tag is not None:
        raise ValueError(f"tag {tag!r} names a release; it cannot be combined with a weights file ({path})")
    if model_type is not None:
        release_config(model_type, bitrate or "8kbps")  # a released combination, before reading the file
    model = load_checkpoint(path)
    check_release(model.config, model_type, bitrate, name=str(path))
    return model
