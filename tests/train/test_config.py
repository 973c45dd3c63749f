"""Run configs: presets, our YAML, the original's YAML keys, overrides, and one clear error for bad values."""

from __future__ import annotations

import dataclasses

import pytest

from jaxdac.config import PRESETS as MODEL_PRESETS
from jaxdac.train.config import PRESETS, ConfigError, RunConfig, dump_yaml, load_config, to_dict

# The keys of the original's conf/final/24khz.yml that differ from its base.yml, plus the data and
# transform keys base.yml sets, written as the original writes them (flat argbind keys).
ORIGINAL_24KHZ = """
DAC.sample_rate: 24000
DAC.encoder_rates: [2, 4, 5, 8]
DAC.decoder_rates: [8, 5, 4, 2]
DAC.n_codebooks: 32
DAC.quantizer_dropout: 0.5
Discriminator.sample_rate: 24000
AdamW.betas: [0.8, 0.99]
AdamW.lr: 0.0001
ExponentialLR.gamma: 0.999996
amp: false
val_batch_size: 100
device: cuda
num_iters: 400000
save_iters: [10000, 50000, 100000, 200000]
valid_freq: 1000
sample_freq: 10000
num_workers: 32
val_idx: [0, 1, 2, 3, 4, 5, 6, 7]
seed: 0
lambdas:
  mel/loss: 15.0
  adv/feat_loss: 2.0
  adv/gen_loss: 1.0
  vq/commitment_loss: 0.25
  vq/codebook_loss: 1.0
VolumeNorm.db: [const, -16]
build_transform.preprocess: [Identity]
build_transform.augment_prob: 0.0
build_transform.augment: [Identity]
build_transform.postprocess: [VolumeNorm, RescaleAudio, ShiftPhase]
MultiScaleSTFTLoss.window_lengths: [2048, 512]
MelSpectrogramLoss.n_mels: [5, 10, 20, 40, 80, 160, 320]
MelSpectrogramLoss.window_lengths: [32, 64, 128, 256, 512, 1024, 2048]
MelSpectrogramLoss.mel_fmin: [0, 0, 0, 0, 0, 0, 0]
MelSpectrogramLoss.mel_fmax: [null, null, null, null, null, null, null]
MelSpectrogramLoss.pow: 1.0
MelSpectrogramLoss.clamp_eps: 1.0e-5
MelSpectrogramLoss.mag_weight: 0.0
batch_size: 72
train/AudioDataset.duration: 0.38
train/AudioDataset.n_examples: 10000000
val/AudioDataset.duration: 5.0
val/build_transform.augment_prob: 1.0
val/AudioDataset.n_examples: 250
test/AudioDataset.duration: 10.0
AudioLoader.shuffle: true
AudioDataset.without_replacement: true
train/build_dataset.folders:
  speech_hq: [/data/vctk, /data/daps/train]
  music_hq: [/data/musdb/train]
val/build_dataset.folders:
  speech_hq: [/data/daps/val]
"""


def test_the_originals_final_24khz_config_reads_as_our_preset(tmp_path):
    path = tmp_path / "24khz.yml"
    path.write_text(ORIGINAL_24KHZ)
    notes = []
    config = load_config(path, notes=notes)
    assert sorted(notes) == ["device", "test/AudioDataset.duration"]
    preset = PRESETS["24khz"]
    assert config.model == preset.model == MODEL_PRESETS["dac_24khz"].replace(quantizer_dropout=0.5)
    assert config.discriminator == preset.discriminator
    assert config.step == preset.step and config.schedule == preset.schedule
    assert config.data.train == {"speech_hq": ("/data/vctk", "/data/daps/train"), "music_hq": ("/data/musdb/train",)}
    assert config.data.val == {"speech_hq": ("/data/daps/val",)}
    assert (config.data.duration, config.data.val_duration, config.data.val_examples) == (0.38, 5.0, 250)
    assert config.data.num_workers == 32 and config.data.volume_norm_db == ("const", -16.0)


def test_defaults_are_base_yml():
    config = RunConfig()
    assert config.model.quantizer_dropout == 1.0 and config.model.n_codebooks == 9
    assert config.schedule.num_iters == 250_000 and config.schedule.save_iters == (10_000, 50_000, 100_000, 200_000)
    assert config.step.weights.to_dict() == {"mel/loss": 15.0, "adv/feat_loss": 2.0, "adv/gen_loss": 1.0,
                                             "vq/commitment_loss": 0.25, "vq/codebook_loss": 1.0,
                                             "stft/loss": 0.0, "waveform/loss": 0.0}
    assert config.step.generator_optimizer.grad_clip == 1e3 and config.step.discriminator_optimizer.grad_clip == 10
    assert config.data.batch_size == 72 and config.data.loudness_cutoff == -40


def test_our_yaml_presets_includes_and_overrides_compose(tmp_path):
    (tmp_path / "base.yml").write_text("schedule:\n  valid_freq: 7\ndata:\n  batch_size: 8\n")
    (tmp_path / "run.yml").write_text("$include: [base.yml]\npreset: tiny\nschedule:\n  num_iters: 30\n"
                                      "step:\n  generator_optimizer: {learning_rate: 3e-5}\n")
    config = load_config(tmp_path / "run.yml", overrides=["data.batch_size=6", "AdamW.lr=2e-4",
                                                           "discriminator.periods=[2, 5]"])
    assert config.model == PRESETS["tiny"].model  # from the preset
    assert (config.schedule.num_iters, config.schedule.valid_freq) == (30, 7)  # file, then include
    assert config.data.batch_size == 6  # override beats the include
    # The original's AdamW.lr names both optimisers; 3e-5 read as a number, not a string.
    assert config.step.generator_optimizer.learning_rate == config.step.discriminator_optimizer.learning_rate == 2e-4
    assert config.discriminator.periods == (2, 5)
    # The resolved config round-trips through the YAML a run folder keeps.
    (tmp_path / "resolved.yml").write_text(dump_yaml(config))
    assert load_config(tmp_path / "resolved.yml") == config


def test_lambdas_replace_the_defaults_as_in_the_original(tmp_path):
    (tmp_path / "a.yml").write_text("lambdas:\n  mel/loss: 10.0\n  adv/gen_loss: 1.0\n")
    weights = load_config(tmp_path / "a.yml").step.weights
    assert (weights.mel, weights.adversarial, weights.feature, weights.commitment) == (10.0, 1.0, 0.0, 0.0)


@pytest.mark.parametrize("text, message", [
    ("DAC.sample_rate: 24000\n", "model.sample_rate 24000 and discriminator.sample_rate 44100 disagree"),
    ("schedule:\n  num_iters: -5\n", "num_iters must be a positive integer, got -5"),
    ("scheduel:\n  num_iters: 5\n", "unknown key 'scheduel'"),
    ("schedule:\n  num_itres: 5\n", "unknown key schedule.num_itres"),
    ("MelSpectrogramLoss.n_mel: [5]\n", "step.mel"),
    ("lambdas:\n  mel: 1\n", "lambdas: unknown loss weight"),
    ("step:\n  compute_dtype: float16\n", "compute_dtype"),
    ("- a\n- b\n", "must hold a mapping"),
    ("a: [1\n", "is not valid YAML"),
])
def test_bad_configs_are_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")) as e:
        load_config(path)
    assert "\n" not in str(e.value)


def test_bad_overrides_and_presets():
    with pytest.raises(ConfigError, match="not of the form"):
        load_config(overrides=["schedule.num_iters"])
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(overrides=["nothing.x=1"])
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_config(preset="huge")
    with pytest.raises(ConfigError, match="missing.yml"):
        load_config("missing.yml")


def test_presets_are_consistent():
    for name, config in PRESETS.items():
        assert config.model.sample_rate == config.discriminator.sample_rate, name
        assert to_dict(config) == to_dict(dataclasses.replace(config)), name
    assert PRESETS["finetune_44khz"].init.weights == "44khz"
    assert PRESETS["finetune_44khz"].model == MODEL_PRESETS["dac_44khz"].replace(quantizer_dropout=0.5)
