"""Model configurations: one frozen dataclass and named presets.

The field names are the keyword arguments of the original ``dac.DAC`` constructor, which is also what
the original writes under ``metadata["kwargs"]`` in its checkpoints, so a checkpoint's config maps onto
:class:`DACConfig` one to one (:meth:`DACConfig.from_kwargs`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping


@dataclasses.dataclass(frozen=True)
class DACConfig:
    """Sizes of a DAC model. ``latent_dim=None`` means ``encoder_dim * 2 ** len(encoder_rates)``."""

    encoder_dim: int = 64
    encoder_rates: tuple[int, ...] = (2, 4, 8, 8)
    latent_dim: int | None = None
    decoder_dim: int = 1536
    decoder_rates: tuple[int, ...] = (8, 8, 4, 2)
    n_codebooks: int = 9
    codebook_size: int = 1024
    codebook_dim: int | tuple[int, ...] = 8
    quantizer_dropout: float = 0.0
    sample_rate: int = 44100

    def __post_init__(self):
        # Normalise list-valued fields (YAML, JSON and checkpoints give lists) so configs hash and compare.
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("encoder_rates", tuple(int(r) for r in self.encoder_rates))
        set_("decoder_rates", tuple(int(r) for r in self.decoder_rates))
        if not isinstance(self.codebook_dim, int):
            dims = tuple(int(d) for d in self.codebook_dim)
            set_("codebook_dim", dims[0] if len(set(dims)) == 1 and len(dims) == self.n_codebooks else dims)
        if self.latent_dim is None:
            set_("latent_dim", self.encoder_dim * 2 ** len(self.encoder_rates))
        set_("quantizer_dropout", float(self.quantizer_dropout))
        problems = []
        if not self.encoder_rates or min(self.encoder_rates) < 1 or min(self.decoder_rates or (0,)) < 1:
            problems.append("rates must be positive integers")
        if self.decoder_dim % 2 ** len(self.decoder_rates):
            problems.append(f"decoder_dim {self.decoder_dim} is not divisible by 2**{len(self.decoder_rates)}")
        if isinstance(self.codebook_dim, tuple) and len(self.codebook_dim) != self.n_codebooks:
            problems.append(f"{len(self.codebook_dim)} codebook dims for {self.n_codebooks} codebooks")
        if not 0.0 <= self.quantizer_dropout <= 1.0:
            problems.append("quantizer_dropout must be in [0, 1]")
        if self.n_codebooks < 1 or self.codebook_size < 2 or self.sample_rate < 1:
            problems.append("n_codebooks, codebook_size and sample_rate must be positive")
        if problems:
            raise ValueError("invalid DAC config: " + "; ".join(problems))

    @property
    def hop_length(self) -> int:
        """Input samples per code frame: the product of the encoder strides."""
        return math.prod(self.encoder_rates)

    @property
    def codebook_dims(self) -> tuple[int, ...]:
        """One codebook dimension per quantizer."""
        if isinstance(self.codebook_dim, int):
            return (self.codebook_dim,) * self.n_codebooks
        return self.codebook_dim

    @property
    def frame_rate(self) -> float:
        return self.sample_rate / self.hop_length

    @property
    def bitrate(self) -> float:
        """Bits per second per channel with all codebooks."""
        return self.frame_rate * self.n_codebooks * math.log2(self.codebook_size)

    def replace(self, **changes) -> "DACConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "DACConfig":
        """Build from the original's constructor kwargs (``metadata["kwargs"]`` of a checkpoint).

        Unknown keys are an error: a checkpoint of another architecture must not load silently.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"unknown DAC config keys: {', '.join(unknown)}")
        values = dict(kwargs)
        if isinstance(values.get("quantizer_dropout"), bool):
            values["quantizer_dropout"] = float(values["quantizer_dropout"])
        return cls(**values)

    def to_kwargs(self) -> dict[str, Any]:
        """Plain JSON-able kwargs, the inverse of :meth:`from_kwargs`."""
        out = dataclasses.asdict(self)
        out["encoder_rates"] = list(self.encoder_rates)
        out["decoder_rates"] = list(self.decoder_rates)
        if isinstance(self.codebook_dim, tuple):
            out["codebook_dim"] = list(self.codebook_dim)
        return out


# The four released configurations (the original's conf/final/*.yml) and two tiny ones of the same
# topology, one per stride family, for fast tests.
dac_44khz = DACConfig()
dac_44khz_16kbps = DACConfig(latent_dim=128, n_codebooks=18)
dac_24khz = DACConfig(encoder_rates=(2, 4, 5, 8), decoder_rates=(8, 5, 4, 2), n_codebooks=32, sample_rate=24000)
dac_16khz = DACConfig(encoder_rates=(2, 4, 5, 8), decoder_rates=(8, 5, 4, 2), n_codebooks=12, sample_rate=16000)
tiny = DACConfig(encoder_dim=4, latent_dim=32, decoder_dim=64, n_codebooks=4, codebook_size=64, codebook_dim=4)
tiny_16khz = tiny.replace(encoder_rates=(2, 4, 5, 8), decoder_rates=(8, 5, 4, 2), sample_rate=16000)

PRESETS: dict[str, DACConfig] = {
    "dac_44khz": dac_44khz,
    "dac_44khz_16kbps": dac_44khz_16kbps,
    "dac_24khz": dac_24khz,
    "dac_16khz": dac_16khz,
    "tiny": tiny,
    "tiny_16khz": tiny_16khz,
}

RELEASED = ("dac_44khz", "dac_44khz_16kbps", "dac_24khz", "dac_16khz")


def get_config(name: str) -> DACConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
