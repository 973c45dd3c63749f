"""The ORIGINAL's evaluation metrics: scripts/evaluate.py's ``get_metrics`` (dac 1.0.0, audiotools 0.7.2).

Runs under the reference interpreter only. Used two ways:

* imported by ``scripts/make_fixtures_metrics.py`` (:func:`get_metrics`, :func:`speech_inputs`);
* as a script by tests/parity/test_metrics_parity.py and benchmarks/evaluate_speed.py:
  ``reference_metrics.py TASKS.json OUT.npz [SCRIPTS_DIR]``, where TASKS.json lists
  ``{"name", "reference", "reconstruction"}`` file paths; OUT.npz gets ``<name>/<metric>`` values,
  ``<name>/pesq_{estimate,reference}`` and ``<name>/stoi_{estimate,reference}`` (the arrays audiotools'
  PESQ and STOI hand to their packages) for tasks with ``"speech": true``, ``<name>/{reference,
  reconstruction}_44k`` (julius' 44.1 kHz signals) for tasks with ``"resampled": true``, and
  ``<name>/seconds`` (the time get_metrics took).

:func:`get_metrics` is scripts/evaluate.py's function written out (the original repository's scripts are
not part of the pip package): ``AudioSignal(path)`` for both files, each ``clone().resample(sr)`` to
22050 and 44100 Hz, and at each rate ``MelSpectrogramLoss()``, ``MultiScaleSTFTLoss()``, ``L1Loss()`` and
``SISDRLoss()`` at the classes' defaults (evaluate.py builds them without arguments), called as
``loss(signal, recons)``, reference first. ViSQOL is left out (no visqol package here). With SCRIPTS_DIR
(a folder holding the original's scripts/evaluate.py and scripts/train.py), the literal
``evaluate.get_metrics`` also runs on every pair, its ViSQOL calls replaced by NaN, and the script fails
unless both give the same numbers.
"""

from __future__ import annotations

import json
import math
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np
import torch

torch.set_num_threads(2)

RATES = {22050: "22k", 44100: "44k"}


def losses():
    """scripts/evaluate.py's State: the four losses at the classes' defaults."""
    from dac.nn import loss

    return {"waveform": loss.L1Loss(), "stft": loss.MultiScaleSTFTLoss(), "mel": loss.MelSpectrogramLoss(),
            "sisdr": loss.SISDRLoss()}


def load(source, sample_rate: int | None = None):
    """An AudioSignal from a path (as evaluate.py loads it) or from an array ``[C, T]`` at ``sample_rate``."""
    from audiotools import AudioSignal

    if isinstance(source, np.ndarray):
        return AudioSignal(torch.from_numpy(np.ascontiguousarray(source, np.float32))[None], sample_rate)
    return AudioSignal(str(source))


@torch.no_grad()
def get_metrics(signal, recons, state=None) -> dict[str, float]:
    """scripts/evaluate.py ``get_metrics`` without ViSQOL, on AudioSignals."""
    state = state or losses()
    output = {}
    for sr in (22050, 44100):
        x = signal.clone().resample(sr)
        y = recons.clone().resample(sr)
        k = RATES[sr]
        output[f"mel-{k}"] = float(state["mel"](x, y))
        output[f"stft-{k}"] = float(state["stft"](x, y))
        output[f"waveform-{k}"] = float(state["waveform"](x, y))
        output[f"sisdr-{k}"] = float(state["sisdr"](x, y))
    return output


@torch.no_grad()
def speech_inputs(signal, recons) -> dict[str, np.ndarray]:
    """What audiotools.metrics.quality.pesq / stoi pass to the pesq and pystoi packages for the 44.1 kHz
    pair (the one jaxdac evaluate scores): ``estimates.clone().to_mono().resample(16000)`` and the same
    for the reference (PESQ); the mono mixes at 44.1 kHz (STOI)."""
    x = signal.clone().resample(44100)
    y = recons.clone().resample(44100)
    return {
        "pesq_estimate": y.clone().to_mono().resample(16000).audio_data[0, 0].numpy(),
        "pesq_reference": x.clone().to_mono().resample(16000).audio_data[0, 0].numpy(),
        "stoi_estimate": y.clone().to_mono().audio_data[0, 0].numpy(),
        "stoi_reference": x.clone().to_mono().audio_data[0, 0].numpy(),
    }


def literal_get_metrics(scripts_dir: str):
    """The original's own ``evaluate.get_metrics(signal_path, recons_path, state)`` with its State, ViSQOL
    replaced by NaN (the visqol package is not installed)."""
    sys.path.insert(0, scripts_dir)
    import evaluate  # the original's scripts/evaluate.py (imports its train.py)
    from audiotools import metrics

    metrics.quality.visqol = lambda *args, **kwargs: torch.tensor(math.nan)
    losses_module = evaluate.losses
    state = evaluate.State(
        waveform_loss=losses_module.L1Loss(), stft_loss=losses_module.MultiScaleSTFTLoss(),
        mel_loss=losses_module.MelSpectrogramLoss(), sisdr_loss=losses_module.SISDRLoss(),
    )

    @torch.no_grad()
    def run(signal_path, recons_path) -> dict[str, float]:
        out = evaluate.get_metrics(signal_path, recons_path, state)
        return {k: float(v) for k, v in out.items() if torch.is_tensor(v) and not k.startswith("visqol")}

    return run


def main(tasks_path: str, out_path: str, scripts_dir: str | None = None) -> None:
    tasks = json.loads(open(tasks_path).read())
    state = losses()
    literal = literal_get_metrics(scripts_dir) if scripts_dir else None
    out = {}
    for task in tasks:
        start = time.perf_counter()
        signal, recons = load(task["reference"]), load(task["reconstruction"])
        values = get_metrics(signal, recons, state)
        out[f"{task['name']}/seconds"] = np.float64(time.perf_counter() - start)
        for key, value in values.items():
            out[f"{task['name']}/{key}"] = np.float64(value)
        if task.get("speech"):
            for key, value in speech_inputs(signal, recons).items():
                out[f"{task['name']}/{key}"] = value
        if task.get("resampled"):  # the original's 44.1 kHz signals, [C, T]
            out[f"{task['name']}/reference_44k"] = signal.clone().resample(44100).audio_data[0].numpy()
            out[f"{task['name']}/reconstruction_44k"] = recons.clone().resample(44100).audio_data[0].numpy()
        if literal is not None:
            original = literal(task["reference"], task["reconstruction"])
            if original != values:
                raise SystemExit(f"{task['name']}: the original's get_metrics gives {original}, "
                                 f"the transcription {values}")
            out[f"{task['name']}/literal_checked"] = np.bool_(True)
    np.savez(out_path, **out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
