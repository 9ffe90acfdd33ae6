#!/usr/bin/env bash
# Install the test dependencies into the active Python, check formatting and
# lint, build the documentation site, and run the whole test suite once per
# Keras backend (JAX, PyTorch, TensorFlow).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python}
# torch==2.13.0 is the CPU build; a bare "torch" would pull a multi-GB CUDA build.
"$PYTHON" -m pip install --quiet "torch==2.13.0" -e ".[test]"

status=0
echo "=== ruff"
"$PYTHON" -m ruff format --check . || status=1
"$PYTHON" -m ruff check . || status=1
echo "=== mkdocs build --strict"
site=$(mktemp -d)
NO_MKDOCS_2_WARNING=1 "$PYTHON" -m mkdocs build --strict --site-dir "$site" || status=1
rm -rf "$site"
for backend in jax torch tensorflow; do
    echo "=== KERAS_BACKEND=$backend"
    KERAS_BACKEND=$backend "$PYTHON" -m pytest -q -p no:cacheprovider "$@" || status=1
done
exit $status
