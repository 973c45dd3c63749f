"""Golden compress / decompress outputs of the ORIGINAL (tests/fixtures/inference.npz).

    PYTHONPATH=tests:scripts .venv-reference/bin/python scripts/make_fixtures_inference.py
"""

import numpy as np

import inference_cases
import model_cases
from reference_inference import compress_decompress, dac_file_arrays
from reference_model import build_original


def main():
    out, models = {}, {}
    for name, (case, _, _, _, win) in inference_cases.CASES.items():
        if case not in models:
            models[case] = build_original(model_cases.presets()[case], model_cases.seed_of(case))
        audio, sr = inference_cases.case_audio(name)
        dac_file, recons = compress_decompress(models[case], audio, sr, win)
        out.update(dac_file_arrays(dac_file, name))
        out[f"{name}.audio"] = recons[..., :: inference_cases.audio_stride(name)]
        print(name, dac_file.codes.shape, recons.shape, flush=True)
    np.savez_compressed(inference_cases.FIXTURE, **out)
    print(f"wrote {inference_cases.FIXTURE} ({inference_cases.FIXTURE.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
