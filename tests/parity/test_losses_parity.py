"""Live parity of jaxdac.train.losses with the original's dac.nn.loss (tests/parity/reference_losses.py).

Training-sized signals (0.38 s excerpts and 5 s validation items, batch 2, at 44.1 kHz; 0.38 s at 24 and
16 kHz; a stereo item), every loss and config of tests/train/loss_cases.py, and the gradients of the
spectral and waveform losses w.r.t. the estimate against torch autograd. The reference side runs once
for all cases.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

import loss_cases as cases  # noqa: E402
import signals  # noqa: E402
from jaxdac.train import losses as L  # noqa: E402

REFERENCE_SCRIPT = Path(__file__).resolve().parent / "reference_losses.py"

RELATIVE = 1e-4  # values, relative
COSINE = 0.999  # gradients: cosine similarity with torch autograd's ...
GRADIENT_NORM = 1e-3  # ... and |g - g_torch| / |g_torch|


def _batch(build, seeds) -> np.ndarray:
    return np.stack([build(s) for s in seeds]).astype(np.float32)


# name -> (sample rate, reference [B, C, T]).
INPUTS = {
    "mixture_0.38s_44k": (44100, lambda: _batch(lambda s: signals.mixture(44100, 0.38, s)[None], (10, 11))),
    "speech_music_5s_44k": (44100, lambda: np.stack([signals.speech_like(44100, 5.0, 12)[None],
                                                     signals.music_like(44100, 5.0, 13)[None]])),
    "mixture_0.38s_24k": (24000, lambda: _batch(lambda s: signals.mixture(24000, 0.38, s)[None], (14, 15))),
    "speech_0.38s_16k": (16000, lambda: _batch(lambda s: signals.speech_like(16000, 0.38, s)[None], (16, 17))),
    "stereo_1s_44k": (44100, lambda: signals.stereo(44100, 1.0, 18)[None]),
}
GRADIENT_INPUTS = ["mixture_0.38s_44k", "speech_music_5s_44k", "speech_0.38s_16k"]

MEL_KW = {name: cases.base_kwargs("mel", kw) for name, kw in cases.MEL_CONFIGS.items()}
# The original accepts match_stride but its forward never hands it to the STFT: same numbers as base.
MEL_KW["match_stride_ignored"] = cases.base_kwargs("mel", {"match_stride": True})
STFT_KW = {name: cases.base_kwargs("stft", kw) for name, kw in cases.STFT_CONFIGS.items()}
STFT_KW["match_stride_ignored"] = cases.base_kwargs("stft", {"match_stride": True})
SISDR_KW = dict(cases.SISDR_CONFIGS)
GAN_SEEDS = (3, 4)
# The mel loss's filterbanks at each DAC rate, plus the variant config's band limits: librosa (as the
# original's training builds them) against jaxdac.dsp.mel_filterbank.
FILTERBANKS = [(sr, w, m, 0.0, None) for sr in (44100, 24000, 16000) for w, m in zip(cases.BASE_MEL["window_lengths"],
                                                                                      cases.BASE_MEL["n_mels"])]
FILTERBANKS += [(44100, 2048, 150, 50.0, 6000.0), (16000, 512, 80, 0.0, None)]


def _pair(name):
    sample_rate, build = INPUTS[name]
    reference = np.ascontiguousarray(build(), dtype=np.float32)
    return cases.perturb(reference, 1000 + len(name)), reference, sample_rate


def _ours(op: str, config: str, estimate, reference, sample_rate):
    if op == "mel":
        kw = {k: v for k, v in MEL_KW[config].items() if k != "match_stride"}
        return lambda x: L.mel_loss(x, reference, sample_rate, L.MelLossConfig(**kw))
    if op == "stft":
        kw = {k: v for k, v in STFT_KW[config].items() if k != "match_stride"}
        return lambda x: L.stft_loss(x, reference, L.STFTLossConfig(**kw))
    if op == "l1":
        return lambda x: L.l1_loss(x, reference)
    return lambda x: L.sisdr_loss(x, reference, L.SISDRConfig(**SISDR_KW[config]))


def _tasks():
    tasks = []
    for name in INPUTS:
        sample_rate = INPUTS[name][0]
        grad = name in GRADIENT_INPUTS
        for op, configs in (("mel", MEL_KW), ("stft", STFT_KW), ("l1", {"base": {}}), ("sisdr", SISDR_KW)):
            for config, kwargs in configs.items():
                tasks.append(dict(name=f"{op}/{config}/{name}", op=op, input=name, sample_rate=sample_rate,
                                  kwargs=kwargs, grad=grad and config == "base"))
    return tasks


def _gan_inputs(seed):
    # Batch 2, maps as gan_outputs shapes them.
    return cases.gan_outputs(seed, batch=2)


@pytest.fixture(scope="module")
def reference(run_reference, tmp_path_factory):
    directory = tmp_path_factory.mktemp("losses")
    arrays = {}
    for name in INPUTS:
        estimate, ref, _ = _pair(name)
        arrays[f"{name}/estimate"], arrays[f"{name}/reference"] = estimate, ref
    tasks = _tasks()
    for seed in GAN_SEEDS:
        d_fake, d_real = _gan_inputs(seed)
        for prefix, outputs in (("fake", d_fake), ("real", d_real)):
            for i, maps in enumerate(outputs):
                for j, m in enumerate(maps):
                    arrays[f"gan{seed}/{prefix}/{i}/{j}"] = m
        tasks.append(dict(name=f"gan/{seed}", op="gan", input=f"gan{seed}", maps=[len(m) for m in d_fake]))
    for sample_rate, n_fft, n_mels, fmin, fmax in FILTERBANKS:
        tasks.append(dict(name=f"filters/{sample_rate}_{n_fft}_{n_mels}_{fmin}_{fmax}", op="mel_filters",
                          sample_rate=sample_rate, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))
    np.savez(directory / "in.npz", tasks=json.dumps(tasks), **arrays)
    run_reference(REFERENCE_SCRIPT, directory / "in.npz", directory / "out.npz", timeout=1800)
    with np.load(directory / "out.npz") as out:
        return dict(out)


@pytest.mark.parametrize("name", list(INPUTS))
def test_loss_values_match_the_original(reference, name):
    estimate, ref, sample_rate = _pair(name)
    worst = 0.0
    for task in (t for t in _tasks() if t["input"] == name):
        op, config = task["op"], task["name"].split("/")[1]
        value = np.asarray(_ours(op, config, estimate, ref, sample_rate)(estimate)).ravel()
        expected = reference[f"{task['name']}/value"].ravel()
        error = float((np.abs(value - expected) / np.abs(expected)).max())
        worst = max(worst, error)
        assert error < RELATIVE, f"{task['name']}: {value} vs the original's {expected}"
    print(f"{name}: worst relative error {worst:.2e}")


@pytest.mark.parametrize("name", GRADIENT_INPUTS)
@pytest.mark.parametrize("op", ["mel", "stft", "l1", "sisdr"])
def test_gradients_match_torch_autograd(reference, name, op):
    estimate, ref, sample_rate = _pair(name)
    grad = np.asarray(jax.jit(jax.grad(_ours(op, "base", estimate, ref, sample_rate)))(estimate))
    expected = reference[f"{op}/base/{name}/grad"]
    assert grad.shape == expected.shape and grad.dtype == np.float32
    grad, expected = grad.astype(np.float64), expected.astype(np.float64)
    cosine = float(np.sum(grad * expected) / (np.linalg.norm(grad) * np.linalg.norm(expected)))
    norm_error = float(np.linalg.norm(grad - expected) / np.linalg.norm(expected))
    print(f"{op} {name}: 1 - cosine {1 - cosine:.1e}, relative norm difference {norm_error:.2e}")
    assert cosine >= COSINE and norm_error <= GRADIENT_NORM


@pytest.mark.parametrize("seed", GAN_SEEDS)
def test_gan_losses_and_gradients_match_the_original(reference, seed):
    d_fake, d_real = _gan_inputs(seed)
    prefix = f"gan/{seed}"
    ours = {
        "disc": L.discriminator_loss(d_fake, d_real),
        "gen": L.generator_adversarial_loss(d_fake),
        "feat": L.feature_matching_loss(d_fake, d_real),
    }
    for key, value in ours.items():
        expected = float(reference[f"{prefix}/{key}"])
        assert abs(float(value) - expected) <= RELATIVE * abs(expected), key
    # Gradients of the generator's two losses w.r.t. every fake and real map (GANLoss detaches the real).
    fns = {"gen": lambda f, r: L.generator_adversarial_loss(f), "feat": L.feature_matching_loss}
    for key, fn in fns.items():
        grad_fake, grad_real = jax.grad(fn, argnums=(0, 1))(
            jax.tree.map(jnp.asarray, d_fake), jax.tree.map(jnp.asarray, d_real)
        )
        for side, grads in (("fake", grad_fake), ("real", grad_real)):
            flat = [np.asarray(g) for maps in grads for g in maps]
            for k, g in enumerate(flat):
                expected = reference[f"{prefix}/{key}_grad_{side}/{k}"]
                scale = max(np.abs(expected).max(), 1e-30)
                assert np.abs(g - expected).max() <= RELATIVE * scale, (key, side, k)


def test_mel_filterbanks_match_librosa(reference):
    from jaxdac.dsp import mel_filterbank

    worst = 0.0
    for sample_rate, n_fft, n_mels, fmin, fmax in FILTERBANKS:
        expected = reference[f"filters/{sample_rate}_{n_fft}_{n_mels}_{fmin}_{fmax}/value"]
        bank = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax)
        assert bank.shape == expected.shape and bank.dtype == expected.dtype == np.float32
        worst = max(worst, float(np.abs(bank - expected).max() / np.abs(expected).max()))
    print(f"mel filterbanks vs librosa: worst error {worst:.2e} of the largest weight")
    assert worst < 1e-6
