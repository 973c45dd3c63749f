"""jaxdac's side of the training-step parity checks: load the weights the original wrote, take the same
steps, and compare metrics, gradients and parameter updates. Used by the golden-fixture tests and the parity suite."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

import train_cases
from jaxdac.config import PRESETS, DiscriminatorConfig
from jaxdac.train.step import StepConfig, init_state, train_step
from jaxdac.weights import convert
from jaxdac.weights.discriminator import load_discriminator
from jaxdac.weights.load import load_model

# Metrics after 1 to 3 steps agree to this relative tolerance (float32 rounding through both models, the
# losses and the AdamW updates); each parameter tensor's gradient and update have at least these cosine
# similarities with the original's (see compare_step for Adam's near-zero-gradient allowance).
METRIC_RTOL = 1e-3
UPDATE_COSINE = 0.999
GRADIENT_COSINE = 0.9999
MAX_FLIPPED = 0.02


def seeded_models(case: str = "tiny"):
    """The case's generator and discriminator with the seeded weights the fixture script gave the original."""
    gen_config = PRESETS[train_cases.CASES[case][0]]
    generator = convert.from_state_dict(
        gen_config, train_cases.generator_weights(convert.torch_shapes(gen_config), case)
    )
    d_config = DiscriminatorConfig.from_kwargs(train_cases.discriminator_kwargs(case))
    discriminator = convert.discriminator_from_state_dict(
        d_config, train_cases.discriminator_weights(convert.discriminator_torch_shapes(d_config), case)
    )
    return generator, discriminator


def torch_layout(generator_def, generator, discriminator_def, discriminator) -> dict[str, np.ndarray]:
    """Values shaped like both models' parameters (the parameters, or their gradients) in the original's
    state-dict layout, keyed ``generator/...`` and ``discriminator/...``."""
    from flax import nnx

    out = {f"generator/{k}": v for k, v in convert.to_state_dict(nnx.merge(generator_def, generator)).items()}
    d = convert.discriminator_to_state_dict(nnx.merge(discriminator_def, discriminator))
    out.update({f"discriminator/{k}": v for k, v in d.items()})
    return out


def parameters(state) -> dict[str, np.ndarray]:
    return torch_layout(state.generator_def, state.generator, state.discriminator_def, state.discriminator)


def run_steps(state, case: str, steps: int, record: set[int]):
    """``steps`` steps of jaxdac on the case's batch: ``(metrics per step, {k: values after step k})`` with
    ``update/<model>/<name>`` (new minus initial) and ``grad/<model>/<name>`` (the step's gradients before
    clipping) for every parameter, in the original's layout."""
    initial = parameters(state)
    audio = train_cases.batch(case)
    metrics, recorded = [], {}
    for k in range(1, steps + 1):
        # One compiled variant for all steps: the one that also returns the gradients.
        state, m, grads = train_step(state, audio, jax.random.key(k), return_gradients=True)
        metrics.append({name: float(v) for name, v in jax.device_get(m).items()})
        if k in record:
            now = parameters(state)
            g = torch_layout(state.generator_def, grads["generator"], state.discriminator_def, grads["discriminator"])
            recorded[k] = {f"update/{n}": now[n] - initial[n] for n in initial}
            recorded[k].update({f"grad/{n}": np.asarray(v) for n, v in g.items()})
    return metrics, recorded


def run_jaxdac(folder: Path, case: str, steps: int, record: set[int], config: StepConfig = StepConfig()):
    """:func:`run_steps` from the original's files in ``folder``."""
    generator = load_model(path=folder / "dac" / "weights.pth")
    discriminator = load_discriminator(folder / "discriminator" / "weights.pth")
    return run_steps(init_state(generator, discriminator, config), case, steps, record)


def compare_metrics(ours: dict, theirs: dict, rtol: float = METRIC_RTOL) -> dict[str, float]:
    """Relative difference of every metric the original logs (its ``other/batch_size`` is the batch size
    times the DDP world size, 0 without DDP: not compared). Raises on a missing or differing one."""
    errors = {}
    for name, value in theirs.items():
        if name == "other/batch_size":
            continue
        assert name in ours, f"jaxdac does not report {name}"
        errors[name] = abs(ours[name] - value) / max(abs(value), 1e-12)
    bad = {k: v for k, v in errors.items() if v > rtol}
    assert not bad, f"metrics differ by more than {rtol} relative: " + ", ".join(
        f"{k} {ours[k]:.6g} vs {theirs[k]:.6g}" for k in bad
    )
    return errors


def compare_step(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray], learning_rate: float = 1e-4):
    """Gradients and updates of every parameter tensor, ours against the original's (``update/...`` and
    ``grad/...`` entries). Returns a report: the lowest gradient and update cosines and the exceptions.

    Every tensor's gradient must have cosine >= GRADIENT_COSINE with the original's, and every tensor's
    update cosine >= UPDATE_COSINE, with one allowance that is Adam's, not ours. Its update is
    ``m / (sqrt(v) + eps)`` of the clipped gradient: no more sensitive to the gradient than the gradient's
    own relative error, except that it throws magnitude away. On the first steps it is about
    ``sign(gradient)``, a full-size step wherever the gradient is, and where the clipped gradient nears
    ``eps`` its size follows the gradient's relative error. So an element whose gradient the two
    implementations round differently (here: by more than 1%, which a tensor's gradient cosine of
    0.9999 allows for its smallest elements) can get a visibly different update. A tensor below the
    update cosine passes only if every element whose update differs by more than 1% of the learning rate
    is such an element, and there are at most MAX_FLIPPED of the tensor's elements.
    """
    assert set(ours) == set(theirs), sorted(set(ours) ^ set(theirs))[:5]
    grads = {n: train_cases.cosine(ours[n], theirs[n]) for n in theirs if n.startswith("grad/")}
    bad = {k: v for k, v in grads.items() if not v >= GRADIENT_COSINE}
    assert not bad, f"{len(bad)} gradients below cosine {GRADIENT_COSINE}: " + ", ".join(
        f"{k} {v:.6f}" for k, v in sorted(bad.items(), key=lambda kv: kv[1])[:8]
    )
    updates = {n: train_cases.cosine(ours[n], theirs[n]) for n in theirs if n.startswith("update/")}
    exceptions, bad = [], []
    for name, cosine in updates.items():
        if cosine >= UPDATE_COSINE:
            continue
        grad = "grad/" + name.removeprefix("update/")
        differ = np.abs(ours[name] - theirs[name]).ravel() > 0.01 * learning_rate
        a, b = ours[grad].ravel(), theirs[grad].ravel()
        noise = np.abs(a - b) > 0.01 * np.maximum(np.abs(a), np.abs(b))
        if differ.sum() <= MAX_FLIPPED * differ.size and noise[differ].all():
            exceptions.append(f"{name} {cosine:.5f} ({int(differ.sum())} of {differ.size} elements whose gradients "
                              "differ by over 1%)")
        else:
            bad.append(f"{name} {cosine:.5f} ({int(differ.sum())} elements differ, {int((~noise[differ]).sum())} "
                       "of them with gradients within 1%)")
    assert not bad, f"{len(bad)} parameter updates below cosine {UPDATE_COSINE}: " + ", ".join(bad[:8])
    worst_grad = min(grads.items(), key=lambda kv: kv[1])
    worst_update = min(updates.items(), key=lambda kv: kv[1])
    return {"gradient": worst_grad, "update": worst_update, "exceptions": exceptions}
