"""Reference side of tests/parity/test_tokenize_parity.py and benchmarks/tokenize_corpus.py: the ORIGINAL's command.

Runs under the reference interpreter with PYTHONPATH=tests:scripts::

    reference_tokenize.py checkpoint CASE OUT.pth    a preset with seeded weights (tests/model_cases.py), saved
                                                     by the original's model.save(package=False)
    reference_tokenize.py encode [--result R] ARGS... ``python -m dac encode ARGS``: the original's command line,
                                                     exactly as a user runs it (R: a JSON file written at the end)
"""

import json
import runpy
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")

if sys.argv[1] == "checkpoint":
    import model_cases
    from reference_model import build_original

    _, _, case, out = sys.argv
    build_original(model_cases.presets()[case], model_cases.seed_of(case), save_path=out)
else:
    args = sys.argv[2:]
    result = None
    if args[:1] == ["--result"]:
        result, args = Path(args[1]), args[2:]
    sys.argv = ["dac", "encode", *args]  # dac/__main__.py takes the command from argv[1]
    runpy.run_module("dac", run_name="__main__", alter_sys=True)
    if result is not None:
        result.write_text(json.dumps({"done": True}))
