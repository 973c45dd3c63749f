"""jaxdac's side of the model parity checks: run a model like scripts/reference_model.py runs the
original, and compare the two result dicts. Used by the golden-fixture tests and the live parity suite."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

import model_cases
from jaxdac import geometry
from jaxdac.config import PRESETS
from jaxdac.nn import DAC
from jaxdac.weights import convert

# Audio and latents agree to float32 rounding of two different convolution libraries.
ATOL = 1e-4


def seeded_model(case: str) -> DAC:
    config = PRESETS[case]
    shapes = convert.torch_shapes(config)
    return convert.from_state_dict(config, model_cases.seeded_state_dict(shapes, model_cases.seed_of(case)))


# Tiny variants with the geometry of the two released configurations that the tiny presets lack: 2,4,5,8
# strides at 24 kHz, and the 44.1 kHz 16 kbps model's 2,4,8,8 strides with a narrow latent and more codebooks.
GEOMETRY_VARIANTS = {
    "tiny_24khz": PRESETS["tiny_16khz"].replace(sample_rate=24000, n_codebooks=6),
    "tiny_44khz_16kbps": PRESETS["tiny"].replace(latent_dim=16, n_codebooks=8),
}


def seeded_geometry_models() -> dict[str, DAC]:
    """Seeded tiny models with the geometry of all four released configurations: ``tiny`` (44.1 kHz),
    ``tiny_16khz`` and the :data:`GEOMETRY_VARIANTS`."""
    out = {case: seeded_model(case) for case in ("tiny", "tiny_16khz")}
    for case, config in GEOMETRY_VARIANTS.items():
        weights = model_cases.seeded_state_dict(convert.torch_shapes(config), model_cases.seed_of(case))
        out[case] = convert.from_state_dict(config, weights)
    return out


@functools.partial(jax.jit, static_argnames=("graphdef",))
def _quantize_every_n(graphdef, state, encoded):
    """The quantiser at every ``n_quantizers`` from 1 to N, in one compiled program (not N)."""
    from flax import nnx

    quantizer = nnx.merge(graphdef, state)
    return [quantizer(encoded, n) for n in range(1, quantizer.n_codebooks + 1)]


def run_jaxdac(model: DAC, x: np.ndarray, per_n_channels: int | None = None) -> dict[str, np.ndarray]:
    from flax import nnx

    audio = jnp.asarray(x)
    out = model.encode(audio)
    decoded = model.decode(out.z)
    from_codes = model.quantizer.from_codes(out.codes)
    from_latents = model.quantizer.from_latents(out.latents)
    result = {
        "z": out.z, "codes": out.codes, "latents": out.latents,
        "commitment_loss": out.commitment_loss, "codebook_loss": out.codebook_loss,
        "audio": decoded,
        "from_codes_z": from_codes.z, "from_codes_z_p": from_codes.z_p,
        "from_latents_z": from_latents.z, "from_latents_codes": from_latents.codes,
        "delay": model.delay, "hop_length": model.hop_length,
        "output_length_1s": geometry.model_output_length(model.config, model.sample_rate),
        "n_parameters": sum(int(np.prod(v.shape)) for v in jax.tree.leaves(nnx.state(model, nnx.Param))),
    }
    encoded = model.encoder(model.preprocess(audio).transpose(0, 2, 1))
    graphdef, state = nnx.split(model.quantizer)
    keep = slice(None) if per_n_channels is None else slice(0, per_n_channels)
    for n, q in enumerate(_quantize_every_n(graphdef, state, encoded), start=1):
        result[f"z_n{n}"] = q.z.transpose(0, 2, 1)[:, keep]
        result[f"codes_n{n}"] = q.codes
    return {k: np.asarray(v) for k, v in result.items()}


def compare(ours: dict, reference: dict, atol: float = ATOL) -> dict[str, float]:
    """Assert agreement key by key; returns the worst absolute error of each float output.

    Integer outputs (codes, lengths, counts) must be identical."""
    assert set(ours) == set(reference), set(ours) ^ set(reference)
    worst = {}
    for key in sorted(reference):
        a, b = np.asarray(ours[key]), np.asarray(reference[key])
        assert a.shape == b.shape, f"{key}: shape {a.shape} != reference {b.shape}"
        if np.issubdtype(b.dtype, np.integer):
            mismatched = int(np.sum(a.astype(np.int64) != b.astype(np.int64)))
            assert mismatched == 0, f"{key}: {mismatched} of {b.size} values differ from the reference"
        else:
            err = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if b.size else 0.0
            tol = atol * max(1.0, float(np.max(np.abs(b)))) if key.endswith("_loss") else atol
            assert err <= tol, f"{key}: max abs error {err:.3g} > {tol:.3g}"
            worst[key] = err
    return worst


def code_ties(model: DAC, x: np.ndarray, ours: np.ndarray, reference: np.ndarray) -> list[tuple[int, int, int, float]]:
    """Where two code arrays ``[N, n_q, F]`` for the model input ``x [N, 1, T]`` differ: for each
    differing (row, frame), the first differing codebook and how close a call it was, as
    ``(row, frame, codebook, relative distance gap between the two candidates)``.

    The residual chain is followed with our codes up to the first difference; later codebooks of that
    frame quantise a different residual and differ as a consequence, so they are not counted.
    """
    from jaxdac.nn.quantize import l2_normalize

    latent = np.asarray(model.encode_latent(model.preprocess(jnp.asarray(x)).transpose(0, 2, 1)))
    ties = []
    for row, frame in sorted({(int(r), int(f)) for r, _, f in np.argwhere(ours != reference)}):
        residual = jnp.asarray(latent[row : row + 1, frame : frame + 1])
        for k, quantizer in enumerate(model.quantizer.quantizers[: ours.shape[1]]):
            a, b = int(ours[row, k, frame]), int(reference[row, k, frame])
            if a != b:
                e = l2_normalize(quantizer.in_proj(residual))[0, 0]
                c = l2_normalize(quantizer.codebook.weight[...])
                dist = np.asarray(jnp.sum(e**2) - 2 * c @ e + jnp.sum(c**2, axis=-1))
                ties.append((row, frame, k, float(abs(dist[a] - dist[b]) / max(dist[a], dist[b], 1e-12))))
                break
            residual = residual - quantizer.out_proj(quantizer.embed(jnp.asarray([[a]])))
    return ties
