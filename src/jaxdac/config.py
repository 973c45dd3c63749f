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


# --- the discriminator ------------------------------------------------------------------------------

# The original's MRD bands: fractions of the STFT's bins, low to high.
DISCRIMINATOR_BANDS = ((0.0, 0.1), (0.1, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))
# The original's fixed widths: output channels of the five MPD convolutions and of every MRD convolution.
MPD_CHANNELS = (32, 128, 512, 1024, 1024)
MRD_CHANNELS = 32
# The keyword arguments of the original ``dac.model.Discriminator``, in its order.
DISCRIMINATOR_KWARGS = ("rates", "periods", "fft_sizes", "sample_rate", "bands")


@dataclasses.dataclass(frozen=True)
class DiscriminatorConfig:
    """Sizes of the GAN discriminator: multi-period (``periods``), multi-scale waveform (``rates``) and
    multi-band multi-scale STFT (``fft_sizes`` x ``bands``) sub-discriminators.

    The first five fields are the original ``dac.model.Discriminator``'s keyword arguments with its
    defaults (``conf/base.yml`` uses them too). ``mpd_channels`` and ``mrd_channels`` are jaxdac's own:
    the original hard-codes these widths, so a config that changes them trains in jaxdac but cannot be
    exported to the original (:meth:`to_kwargs` refuses). The multi-scale waveform discriminator's widths
    are fixed (its grouped convolutions tie channels to groups).
    """

    rates: tuple[int, ...] = ()
    periods: tuple[int, ...] = (2, 3, 5, 7, 11)
    fft_sizes: tuple[int, ...] = (2048, 1024, 512)
    sample_rate: int = 44100
    bands: tuple[tuple[float, float], ...] = DISCRIMINATOR_BANDS
    mpd_channels: tuple[int, ...] = MPD_CHANNELS
    mrd_channels: int = MRD_CHANNELS

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        problems = []
        try:
            for name in ("rates", "periods", "fft_sizes", "mpd_channels"):
                set_(name, tuple(_as_int(v) for v in getattr(self, name)))
            set_("sample_rate", _as_int(self.sample_rate))
            set_("mrd_channels", _as_int(self.mrd_channels))
            set_("bands", tuple((float(lo), float(hi)) for lo, hi in self.bands))
        except (TypeError, ValueError) as e:
            raise ValueError(f"invalid discriminator config: {e}") from None
        if self.sample_rate < 1:
            problems.append("sample_rate must be positive")
        if not (self.rates or self.periods or self.fft_sizes):
            problems.append("no sub-discriminator (rates, periods and fft_sizes are all empty)")
        if any(p < 1 for p in self.periods):
            problems.append("periods must be positive")
        if any(r < 1 or self.sample_rate // r < 1 for r in self.rates):
            problems.append("rates must be positive and at most sample_rate")
        if any(f < 4 for f in self.fft_sizes):
            problems.append("fft_sizes must be at least 4")
        if len(self.mpd_channels) != len(MPD_CHANNELS) or min(self.mpd_channels) < 1:
            problems.append(f"mpd_channels must be {len(MPD_CHANNELS)} positive widths")
        if self.mrd_channels < 1:
            problems.append("mrd_channels must be positive")
        if self.fft_sizes and not self.bands:
            problems.append("bands is empty")
        for lo, hi in self.bands:
            if not 0.0 <= lo < hi <= 1.0:
                problems.append(f"band ({lo}, {hi}) is not 0 <= low < high <= 1")
            # The original rounds band edges down to whole bins: a band must keep at least one.
            for f in self.fft_sizes:
                n_bins = f // 2 + 1
                if 0.0 <= lo < hi <= 1.0 and int(lo * n_bins) >= int(hi * n_bins):
                    problems.append(f"band ({lo}, {hi}) holds no bin of the {f}-point STFT")
        if problems:
            raise ValueError("invalid discriminator config: " + "; ".join(problems))

    @property
    def original_widths(self) -> bool:
        """Whether the widths are the original's, so that the original can build this discriminator."""
        return self.mpd_channels == MPD_CHANNELS and self.mrd_channels == MRD_CHANNELS

    def band_bins(self, fft_size: int) -> tuple[tuple[int, int], ...]:
        """The bands of the ``fft_size``-point STFT as ``[start, stop)`` bin ranges, as the original rounds them."""
        n_bins = fft_size // 2 + 1
        return tuple((int(lo * n_bins), int(hi * n_bins)) for lo, hi in self.bands)

    def replace(self, **changes) -> "DiscriminatorConfig":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> "DiscriminatorConfig":
        """Build from the original's constructor kwargs (``metadata["kwargs"]`` of its ``weights.pth``)
        or from :meth:`to_kwargs`; jaxdac's width fields are accepted too. Unknown keys are an error.

        Note that the original's ``Discriminator.save`` records its *default* kwargs whatever the model
        was built with (it reads them from attributes the class does not keep).
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(kwargs) - names)
        if unknown:
            raise ValueError(f"unknown discriminator config keys: {', '.join(map(str, unknown))}")
        return cls(**kwargs)

    def to_kwargs(self) -> dict[str, Any]:
        """The original's constructor kwargs (plain lists, JSON-able), the inverse of :meth:`from_kwargs`.

        Raises ``ValueError`` for non-default widths, which the original cannot build.
        """
        if not self.original_widths:
            raise ValueError(
                f"this discriminator (mpd_channels={list(self.mpd_channels)}, mrd_channels={self.mrd_channels}) "
                f"has widths the original cannot build (it fixes mpd_channels={list(MPD_CHANNELS)}, "
                f"mrd_channels={MRD_CHANNELS}); it has no original kwargs"
            )
        return {
            "rates": list(self.rates),
            "periods": list(self.periods),
            "fft_sizes": list(self.fft_sizes),
            "sample_rate": self.sample_rate,
            "bands": [list(b) for b in self.bands],
        }


def _as_int(value) -> int:
    # Whole numbers only (YAML may give 2.0); bools are not sizes.
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{value!r} is not a whole number")
    return int(value)


# The original's discriminator (conf/base.yml), the smallest one the original builds that still has each
# kind of sub-discriminator it trains with (two MPDs, two MRDs: the test and tiny-training config), and a
# narrow one for fast CPU training loops that the original cannot build.
discriminator_default = DiscriminatorConfig()
discriminator_tiny = DiscriminatorConfig(periods=(2, 3), fft_sizes=(256, 128))
discriminator_tiny_narrow = discriminator_tiny.replace(mpd_channels=(4, 8, 16, 32, 32), mrd_channels=8)

DISCRIMINATOR_PRESETS: dict[str, DiscriminatorConfig] = {
    "default": discriminator_default,
    "tiny": discriminator_tiny,
    "tiny_narrow": discriminator_tiny_narrow,
}


def get_discriminator_config(name: str) -> DiscriminatorConfig:
    try:
        return DISCRIMINATOR_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown discriminator preset {name!r}; choose one of {', '.join(DISCRIMINATOR_PRESETS)}") from None
