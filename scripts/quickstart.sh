#!/usr/bin/env bash
# The README's main command. Installs what it needs into the active Python,
# then, on the CPU with JAX: builds a small Megapixel MNIST offline, trains
# attention sampling and the two CNN baselines (each in its own process),
# and writes a side-by-side report with the test errors and pictures of
# where the model looks. Everything goes to OUT (the first argument, by
# default runs/quickstart-<date>-<time>/ in the repository).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$REPO/runs/quickstart-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$REPO"

PYTHON=${PYTHON:-python}
export KERAS_BACKEND=jax  # the only backend installed below

"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[jax,mnist]"

ats() { "$PYTHON" -m ats.cli "$@"; }
ats mnist make-data --preset quick --out "$OUT/data"
echo "=== training ats"
ats mnist train --preset quick --model ats --data "$OUT/data" --run-dir "$OUT/ats"
# The baselines: one epoch on 2,000 images, to measure what they cost.
for model in full-cnn low-cnn; do
    echo "=== training $model"
    ats mnist train --preset quick --model "$model" --data "$OUT/data" \
        --run-dir "$OUT/$model" --train-images 2000
done
ats mnist report "$OUT/ats" "$OUT/full-cnn" "$OUT/low-cnn" \
    --out "$OUT/report.md"

echo
echo "Report:   $OUT/report.md"
echo "Pictures: $OUT/ats/pictures (final_sampled.png, final_top_k.png," \
     "curves.png, epoch_*.png)"
