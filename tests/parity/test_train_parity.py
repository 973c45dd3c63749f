"""Live: jaxdac's training step against the original's, full size, step for step; weights exported by
jaxdac loaded by the original; quantiser dropout drawn by the original's rule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import train_cases
import train_parity

HERE = Path(__file__).resolve().parent


def _recorded(folder: Path, step: int) -> dict[str, np.ndarray]:
    keys = json.loads((folder / "step_keys.json").read_text())
    flat = np.load(folder / f"step_{step}.npy", mmap_mode="r")
    out, offset = {}, 0
    for name, shape in keys:
        size = int(np.prod(shape))
        out[name] = np.asarray(flat[offset : offset + size]).reshape(shape)
        offset += size
    assert offset == flat.size
    return out


@pytest.mark.slow
@pytest.mark.parametrize("case, steps", [("dac_44khz", 3), ("dac_24khz", 1), ("dac_16khz", 1)])
def test_full_size_steps_equal_the_originals(run_reference, tmp_path, case, steps):
    record = sorted({1, steps})
    run_reference(HERE / "reference_train_run.py", case, steps, tmp_path, *record)
    theirs = json.loads((tmp_path / "metrics.json").read_text())
    ours, updates = train_parity.run_jaxdac(tmp_path, case, steps, set(record))
    report = []
    for k in range(steps):
        errors = train_parity.compare_metrics(ours[k], theirs[k])
        report.append(f"step {k + 1}: worst metric {max(errors, key=errors.get)} {max(errors.values()):.2e}")
    for k in record:
        result = train_parity.compare_step(updates[k], _recorded(tmp_path, k))
        (g_name, g_cos), (u_name, u_cos) = result["gradient"], result["update"]
        report.append(f"step {k}: lowest gradient cosine {g_cos:.7f} ({g_name}), lowest update cosine "
                      f"{u_cos:.6f} ({u_name}); Adam near-zero flips: {result['exceptions'] or 'none'}")
    print(f"{case}: " + "; ".join(report))


def test_exported_weights_load_in_the_original_and_give_the_same_outputs(run_reference, tmp_path):
    import jax.numpy as jnp

    from jaxdac.train.export import save_original
    from jaxdac.train.step import init_state
    from train_parity import seeded_models

    generator, discriminator = seeded_models("tiny")
    save_original(init_state(generator, discriminator), tmp_path)
    audio = train_cases.batch("tiny")
    np.save(tmp_path / "audio.npy", audio)
    run_reference(HERE / "reference_load_exported.py", tmp_path)
    theirs = np.load(tmp_path / "outputs.npz")
    codes = np.asarray(generator.encode(jnp.asarray(audio)).codes)
    np.testing.assert_array_equal(theirs["codes"], codes)
    fmaps = discriminator(jnp.asarray(audio))
    n = 0
    for d, maps in enumerate(fmaps):
        for m, fmap in enumerate(maps):
            ref = theirs[f"fmap_{d}_{m}"]
            scale = max(float(np.abs(ref).max()), 1e-6)
            assert np.abs(np.asarray(fmap) - ref).max() <= 1e-4 * scale, (d, m)
            n += 1
    assert n == int(theirs["n_fmaps"])


def test_quantizer_dropout_follows_the_originals_rule(run_reference, tmp_path):
    # The original draws how many codebooks each item keeps inside its forward pass; the reference
    # script recovers the count of every item of many passes from the quantised output. Same rule in
    # jaxdac: the distributions of counts per item position must agree (chi-square, two samples).
    import jax

    from jaxdac.nn.quantize import dropout_counts

    batch, n_codebooks, p, draws = 8, 4, 0.5, 1500
    run_reference(HERE / "reference_dropout.py", tmp_path, batch, n_codebooks, p, draws)
    theirs = np.load(tmp_path / "counts.npy")  # [draws, batch]: codebooks each item kept, 1..N
    keys = jax.random.split(jax.random.key(0), draws)
    ours = np.asarray(jax.vmap(lambda k: dropout_counts(k, batch, n_codebooks, p))(keys))
    ours = np.minimum(ours, n_codebooks)  # N + 1 ("all", the mask's bound) keeps the N codebooks there are
    dropped = int(batch * p)
    assert (theirs[:, dropped:] == n_codebooks).all() and (ours[:, dropped:] == n_codebooks).all()
    a = np.bincount(theirs[:, :dropped].ravel(), minlength=n_codebooks + 1)[1:]
    b = np.bincount(ours[:, :dropped].ravel(), minlength=n_codebooks + 1)[1:]
    assert a.sum() == b.sum() == draws * dropped
    expected = (a + b) / 2
    chi2 = float((((a - expected) ** 2 + (b - expected) ** 2) / expected).sum())
    assert chi2 < 16.3, (chi2, a, b)  # 3 degrees of freedom: p = 0.001
