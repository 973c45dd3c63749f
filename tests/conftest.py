import sys
from pathlib import Path

# Shared numpy-only helpers (signals, model_cases) live beside the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))
