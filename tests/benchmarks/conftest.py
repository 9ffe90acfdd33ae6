"""The benchmarks are scripts, not a package: their folder goes on the path
so that the tests import their modules as the scripts do."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
if str(BENCHMARKS) not in sys.path:
    sys.path.insert(0, str(BENCHMARKS))
