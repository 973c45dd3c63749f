"""The configuration of a training run: frozen dataclasses, presets, YAML files and overrides.

    config = load_config("run.yml", overrides=["schedule.num_iters=2000", "data.batch_size=12"])
    config = get_preset("44khz").replace_path("data.batch_size", 12)

A :class:`RunConfig` has one section per part of the run, each a frozen dataclass whose defaults are the
original's ``conf/base.yml``:

=============  ======================================================================================
``model``      :class:`~jaxdac.config.DACConfig` (the generator)
``discriminator``  :class:`~jaxdac.config.DiscriminatorConfig`
``step``       :class:`~jaxdac.train.step.StepConfig`: loss configs and weights, both optimisers,
               quantiser dropout, compute dtype
``data``       :class:`~jaxdac.train.data.DataConfig`: sources, excerpts, batch sizes, transforms
``schedule``   :class:`ScheduleConfig`: iterations, validation, samples, checkpoints, seed
``init``       :class:`InitConfig`: weights to start from (fine-tuning)
=============  ======================================================================================

A YAML file holds any subset of these as nested mappings (``schedule: {num_iters: 2000}``); missing
values keep their defaults (or the preset's, with ``preset: NAME`` at the top). The original's own flat
keys are read too, so its configs run unchanged: ``DAC.sample_rate``, ``Discriminator.periods``,
``AdamW.lr`` (and ``generator/AdamW.lr``), ``ExponentialLR.gamma``, ``MelSpectrogramLoss.n_mels``,
``MultiScaleSTFTLoss.window_lengths``, ``lambdas``, ``batch_size``, ``num_iters``, ``valid_freq``,
``train/build_dataset.folders``, ``train/AudioDataset.duration``, ``$include`` and the rest of
``conf/base.yml`` (:data:`ORIGINAL_KEYS`). Keys that only steer the original's machinery (``device``,
``num_workers`` of its DataLoader is kept, ``test/...``) are reported and ignored; any other unknown key
is an error, so a typo does not silently train something else. Overrides ``section.key=value`` parse
their value as YAML (``[2, 3]``, ``null``, ``1e-4``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
import typing
from pathlib import Path
from typing import Any, Mapping

from jaxdac.config import DACConfig, DiscriminatorConfig, PRESETS as MODEL_PRESETS, DISCRIMINATOR_PRESETS
from jaxdac.train.data import DataConfig
from jaxdac.train.losses import LossWeights
from jaxdac.train.step import StepConfig

__all__ = [
    "ConfigError",
    "InitConfig",
    "RunConfig",
    "ScheduleConfig",
    "PRESETS",
    "get_preset",
    "load_config",
    "apply_overrides",
    "to_dict",
    "from_dict",
    "dump_yaml",
]


class ConfigError(ValueError):
    """A configuration file or override that cannot describe a run; the message is one line."""


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """When things happen, in steps. Defaults: conf/base.yml.

    ``checkpoint_freq`` None checkpoints at every validation, as the original; ``keep_latest`` regular
    checkpoints are kept, plus the best by validation mel loss and those at ``save_iters``.
    ``log_freq``: scalars to TensorBoard every so many steps (the original logs every step).
    """

    num_iters: int = 250_000
    valid_freq: int = 1000
    sample_freq: int = 10_000
    checkpoint_freq: int | None = None
    save_iters: tuple[int, ...] = (10_000, 50_000, 100_000, 200_000)
    keep_latest: int = 2
    log_freq: int = 1
    seed: int = 0
    val_idx: tuple[int, ...] = tuple(range(8))

    def __post_init__(self):
        object.__setattr__(self, "save_iters", tuple(int(s) for s in self.save_iters))
        object.__setattr__(self, "val_idx", tuple(int(i) for i in self.val_idx))
        problems = []
        for name in ("num_iters", "valid_freq", "sample_freq", "keep_latest", "log_freq"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                problems.append(f"{name} must be a positive integer, got {value!r}")
        if self.checkpoint_freq is not None and (not isinstance(self.checkpoint_freq, int) or self.checkpoint_freq < 1):
            problems.append(f"checkpoint_freq must be a positive integer or null, got {self.checkpoint_freq!r}")
        if any(s < 1 for s in self.save_iters) or any(i < 0 for i in self.val_idx):
            problems.append("save_iters must be positive and val_idx non-negative")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            problems.append(f"seed must be a non-negative integer, got {self.seed!r}")
        if problems:
            raise ConfigError("schedule: " + "; ".join(problems))


@dataclasses.dataclass(frozen=True)
class InitConfig:
    """Where a run's weights come from, when not from scratch (fine-tuning).

    ``weights``: an original ``.pth``, a jaxdac ``.safetensors``, a release name (``44khz``, ``24khz``,
    ``16khz``, ``44khz_16kbps``: downloaded once into the cache) or an original training folder
    (``.../latest``, with ``dac/weights.pth`` and ``discriminator/weights.pth``). ``discriminator``: an
    original discriminator ``weights.pth`` (or a training folder). The generator's architecture then comes
    from the weights: a ``model`` section that disagrees is an error.
    """

    weights: str | None = None
    discriminator: str | None = None


@dataclasses.dataclass(frozen=True)
class RunConfig:
    model: DACConfig = DACConfig(quantizer_dropout=1.0)  # conf/base.yml: DAC.quantizer_dropout 1.0
    discriminator: DiscriminatorConfig = DiscriminatorConfig()
    step: StepConfig = StepConfig()
    data: DataConfig = DataConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    init: InitConfig = InitConfig()

    def __post_init__(self):
        if self.model.sample_rate != self.discriminator.sample_rate:
            raise ConfigError(
                f"model.sample_rate {self.model.sample_rate} and discriminator.sample_rate "
                f"{self.discriminator.sample_rate} disagree; the discriminator judges the generator's audio"
            )
        if self.step.compute_dtype not in ("float32", "bfloat16"):
            raise ConfigError(f"step.compute_dtype must be float32 or bfloat16, got {self.step.compute_dtype!r}")

    def replace_path(self, path: str, value: Any) -> "RunConfig":
        """A copy with ``section.key[.subkey]`` set to ``value`` (as an override would)."""
        return from_dict(RunConfig, _set_path(to_dict(self), path.split("."), value))


# --- dataclasses <-> plain dicts ------------------------------------------------------------------


def to_dict(obj) -> Any:
    """A config as plain YAML-able values (tuples become lists; nested dataclasses, mappings)."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return [to_dict(v) for v in obj]
    return obj


@functools.lru_cache(maxsize=None)
def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _dataclass_of(hint) -> type | None:
    if dataclasses.is_dataclass(hint):
        return hint
    for arg in typing.get_args(hint):  # Optional[SomeConfig]
        if dataclasses.is_dataclass(arg):
            return arg
    return None


def from_dict(cls, values: Mapping[str, Any], where: str = "") -> Any:
    """Build dataclass ``cls`` from a (partial) mapping; missing fields keep their defaults, unknown keys
    are a :class:`ConfigError` naming their path."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{where or 'config'} must be a mapping of keys to values, got {type(values).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        raise ConfigError(f"unknown key {_join(where, unknown[0])}; {where or 'the config'} has {', '.join(fields)}")
    hints = _hints(cls)
    kwargs = {}
    for name, value in values.items():
        sub = _dataclass_of(hints[name])
        path = _join(where, name)
        if sub is not None and isinstance(value, Mapping):
            kwargs[name] = from_dict(sub, value, path)
        elif sub is not None and value is not None and not dataclasses.is_dataclass(value):
            raise ConfigError(f"{path} must be a mapping, got {value!r}")
        else:
            kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where or 'config'}: {e}") from None


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _set_path(tree: dict, parts: list[str], value: Any) -> dict:
    out = dict(tree)
    head = parts[0]
    if len(parts) == 1:
        out[head] = value
        return out
    child = out.get(head)
    if not isinstance(child, Mapping):
        raise ConfigError(f"{head} is not a section (it holds {child!r}); cannot set {'.'.join(parts)}")
    out[head] = _set_path(dict(child), parts[1:], value)
    return out


def _merge(base: dict, update: Mapping) -> dict:
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping) and key not in _REPLACED_WHOLE:
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# Mappings that a file replaces as a whole rather than merges into: a run's data sources (a preset's
# example folders must not linger beside the user's) and the loss weights (the original's ``lambdas``
# replaces the defaults: a metric it does not name has weight 0).
_REPLACED_WHOLE = {"train", "val"}


# --- the original's keys ----------------------------------------------------------------------------

_BOTH = ("generator_optimizer", "discriminator_optimizer")
_ADAMW = {"lr": "learning_rate", "betas": "betas", "eps": "eps", "weight_decay": "weight_decay"}

# Original key -> our path(s). Scoped argbind keys ("generator/AdamW.lr") come first in _original_paths.
ORIGINAL_KEYS: dict[str, tuple[str, ...]] = {
    **{f"AdamW.{k}": tuple(f"step.{o}.{v}" for o in _BOTH) for k, v in _ADAMW.items()},
    **{f"generator/AdamW.{k}": (f"step.generator_optimizer.{v}",) for k, v in _ADAMW.items()},
    **{f"discriminator/AdamW.{k}": (f"step.discriminator_optimizer.{v}",) for k, v in _ADAMW.items()},
    "ExponentialLR.gamma": tuple(f"step.{o}.gamma" for o in _BOTH),
    "generator/ExponentialLR.gamma": ("step.generator_optimizer.gamma",),
    "discriminator/ExponentialLR.gamma": ("step.discriminator_optimizer.gamma",),
    "num_iters": ("schedule.num_iters",),
    "save_iters": ("schedule.save_iters",),
    "valid_freq": ("schedule.valid_freq",),
    "sample_freq": ("schedule.sample_freq",),
    # The original's data order never depends on its seed (data.seed 0 is that order).
    "seed": ("schedule.seed",),
    "val_idx": ("schedule.val_idx",),
}
# Keys of the original that steer only its own machinery; read, reported and ignored.
IGNORED_ORIGINAL_KEYS = ("device", "save_path", "resume", "tag", "load_weights", "args.debug")
_IGNORED_PREFIXES = ("test/",)


def _original_paths(key: str) -> tuple[str, ...] | None:
    """Our path(s) for one of the original's flat keys, or None if it is not one."""
    if key in ORIGINAL_KEYS:
        return ORIGINAL_KEYS[key]
    if key in _DATA_KEYS:
        return (_DATA_KEYS[key],)
    head, _, field = key.partition(".")
    if not field:
        return None
    if head == "DAC":
        return (f"model.{field}",)
    if head == "Discriminator":
        return (f"discriminator.{field}",)
    if head == "MelSpectrogramLoss":
        return (f"step.mel.{field}",)
    if head == "MultiScaleSTFTLoss":
        return (f"step.stft.{field}",)
    return None


def _from_original(flat: Mapping[str, Any], notes: list[str]) -> dict:
    """The original's keys of a YAML mapping, as our nested dict; our own sections pass through."""
    out: dict = {}
    for key, value in flat.items():
        if key in RunConfig.__dataclass_fields__ or key == "preset":
            out = _merge(out, {key: value})
            continue
        if key in IGNORED_ORIGINAL_KEYS or key.startswith(_IGNORED_PREFIXES):
            notes.append(key)
            continue
        if key == "lambdas":
            try:
                weights = LossWeights.from_dict(value)
            except ValueError as e:
                raise ConfigError(f"lambdas: {e}") from None
            out = _merge(out, {"step": {"weights": to_dict(weights)}})
            continue
        if key == "amp":
            # The original's amp is float16 autocast on CUDA; its counterpart here is bfloat16 compute.
            out = _merge(out, {"step": {"compute_dtype": "bfloat16" if value else "float32"}})
            continue
        if key in _DATA_VALUE_KEYS:
            out = _merge(out, {"data": _DATA_VALUE_KEYS[key](value)})
            continue
        paths = _original_paths(key)
        if paths is None:
            raise ConfigError(f"unknown key {key!r} (neither a section of jaxdac's run config nor a key of the "
                              "original's conf/*.yml that jaxdac reads)")
        for path in paths:
            out = _set_path_creating(out, path.split("."), value)
    return out


def _set_path_creating(tree: dict, parts: list[str], value: Any) -> dict:
    out = dict(tree)
    if len(parts) == 1:
        out[parts[0]] = value
        return out
    child = out.get(parts[0])
    out[parts[0]] = _set_path_creating(dict(child) if isinstance(child, Mapping) else {}, parts[1:], value)
    return out


# The original's data keys (audiotools' AudioDataset / AudioLoader / transforms through argbind scopes).
_DATA_KEYS = {
    "batch_size": "data.batch_size",
    "val_batch_size": "data.val_batch_size",
    "num_workers": "data.num_workers",
    "train/AudioDataset.duration": "data.duration",
    "val/AudioDataset.duration": "data.val_duration",
    "train/AudioDataset.n_examples": "data.n_examples",
    "val/AudioDataset.n_examples": "data.val_examples",
    "AudioDataset.loudness_cutoff": "data.loudness_cutoff",
    "AudioDataset.num_tries": "data.num_tries",
    "AudioDataset.without_replacement": "data.without_replacement",
    "AudioLoader.shuffle": "data.shuffle",
    "train/build_dataset.folders": "data.train",
    "val/build_dataset.folders": "data.val",
    "build_transform.preprocess": "data.preprocess",
    "build_transform.augment": "data.augment",
    "build_transform.augment_prob": "data.augment_prob",
    "train/build_transform.augment_prob": "data.augment_prob",
    "val/build_transform.augment_prob": "data.val_augment_prob",
    "build_transform.postprocess": "data.postprocess",
    "VolumeNorm.db": "data.volume_norm_db",
    "ShiftPhase.shift": "data.shift_phase",
    "RescaleAudio.val": "data.rescale_max",
}
_DATA_VALUE_KEYS: dict[str, Any] = {}


# --- presets ------------------------------------------------------------------------------------------

def _final(model: DACConfig) -> RunConfig:
    # conf/final/*.yml: base.yml with quantizer dropout 0.5 and 400k iterations.
    return RunConfig(
        model=model.replace(quantizer_dropout=0.5),
        discriminator=DiscriminatorConfig(sample_rate=model.sample_rate),
        schedule=ScheduleConfig(num_iters=400_000),
    )


PRESETS: dict[str, RunConfig] = {
    "base": RunConfig(),
    "44khz": _final(MODEL_PRESETS["dac_44khz"]),
    "44khz_16kbps": _final(MODEL_PRESETS["dac_44khz_16kbps"]),
    "24khz": _final(MODEL_PRESETS["dac_24khz"]),
    "16khz": _final(MODEL_PRESETS["dac_16khz"]),
    # Fine-tuning the released 44.1 kHz model on one GPU: its weights, the original's 1gpu.yml batch,
    # a shorter schedule with validation and checkpoints every 500 steps.
    # Released files record quantizer_dropout False whatever they were trained with (the original's save
    # does not keep it), so the final configs' 0.5 is set for the step.
    "finetune_44khz": dataclasses.replace(
        _final(MODEL_PRESETS["dac_44khz"]),
        init=InitConfig(weights="44khz"),
        step=StepConfig(quantizer_dropout=0.5),
        data=DataConfig(batch_size=12, val_batch_size=12),
        schedule=ScheduleConfig(num_iters=20_000, valid_freq=500, sample_freq=2000, save_iters=(5000, 10_000)),
    ),
}


# The tiny generator and a narrow discriminator: seconds per step on a laptop CPU, for tests and demos.
PRESETS["tiny"] = RunConfig(
    model=MODEL_PRESETS["tiny"].replace(quantizer_dropout=0.5),
    discriminator=DISCRIMINATOR_PRESETS["tiny_narrow"],
    data=DataConfig(batch_size=4, val_batch_size=4, val_examples=4, val_duration=1.0),
    schedule=ScheduleConfig(num_iters=200, valid_freq=50, sample_freq=100, save_iters=(), keep_latest=2),
)


def get_preset(name: str) -> RunConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None


# --- files and overrides --------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _loader():
    """PyYAML's SafeLoader, reading ``1e-4`` as a float as YAML 1.2 does (YAML 1.1, PyYAML's default,
    needs ``1.0e-4`` and would hand the learning rate over as a string)."""
    import re

    import yaml

    class Loader(yaml.SafeLoader):
        pass

    Loader.add_implicit_resolver(
        "tag:yaml.org,2002:float",
        re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
        list("-+0123456789."),
    )
    return Loader


def _yaml_load(text: str):
    import yaml

    return yaml.load(text, Loader=_loader())


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    import yaml

    path = Path(path)
    if path.resolve() in seen:
        raise ConfigError(f"{path}: $include loops back to itself")
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config {path}: {e.strerror or e}") from None
    try:
        data = _yaml_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of keys to values, not a {type(data).__name__}")
    includes = data.pop("$include", [])
    merged: dict = {}
    for include in [includes] if isinstance(includes, str) else includes:
        # argbind resolves includes against the working directory (the original runs from its repo root);
        # beside the including file is tried first.
        candidates = [path.parent / include, Path(include)]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            raise ConfigError(f"{path}: $include {include} not found (looked beside the file and in {os.getcwd()})")
        merged = _merge(merged, _read_yaml(found, (*seen, path.resolve())))
    return _merge(merged, data)


def apply_overrides(tree: dict, overrides: list[str]) -> dict:
    """``section.key=value`` strings applied to a nested dict; values parse as YAML."""
    import yaml

    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        try:
            value = _yaml_load(text) if text.strip() else None
        except yaml.YAMLError:
            value = text
        key = key.strip()
        if key.split(".")[0] not in RunConfig.__dataclass_fields__:
            paths = _original_paths(key)
            if paths is None:
                raise ConfigError(f"override {key}: unknown section {key.split('.')[0]!r}; sections: "
                                  f"{', '.join(RunConfig.__dataclass_fields__)}")
        else:
            paths = (key,)
        for path in paths:
            tree = _set_path_creating(tree, path.split("."), value)
    return tree


def load_config(path: str | os.PathLike | None = None, *, preset: str | None = None,
                overrides: list[str] = (), notes: list[str] | None = None) -> RunConfig:
    """The run config of a YAML file (ours or the original's) and/or a preset, with overrides applied.

    Precedence: defaults < preset (``preset`` argument, else the file's ``preset:`` key) < file <
    overrides. Keys of the original that jaxdac ignores are appended to ``notes``.
    """
    notes = [] if notes is None else notes
    tree: dict = {}
    if path is not None:
        tree = _from_original(_read_yaml(Path(path)), notes)
    file_preset = tree.pop("preset", None)
    name = preset or file_preset
    base = to_dict(get_preset(name)) if name else to_dict(RunConfig())
    tree = _merge(base, tree)
    tree = apply_overrides(tree, list(overrides))
    return from_dict(RunConfig, tree)


def dump_yaml(config: RunConfig) -> str:
    """The resolved config as YAML (the run folder's ``config.yml``), readable by :func:`load_config`."""
    import yaml

    return yaml.safe_dump(to_dict(config), sort_keys=False, default_flow_style=None, width=110)
