#!/usr/bin/env bash
# The pathology demo of docs/pathology.md, offline, on the CPU with JAX:
# writes synthetic H&E-like whole-slide images (SVS, 0.5 microns per pixel,
# 20,000 to 24,000 pixels a side; tumour slides hold small nests of large
# dark nuclei), trains attention sampling on them with patches at 0.5 and
# the low view at 32 microns per pixel on the tissue mask, evaluates it per
# slide and per case, and predicts the slides: heatmap PNGs, GeoJSON for
# QuPath and heatmap TIFFs. Everything goes to OUT (the first argument, by
# default runs/pathology-demo-<date>-<time>/ in the repository).
#
# Environment: PYTHON (default python), INSTALL=0 to skip installing the
# package's extras, N_SLIDES (12), EPOCHS (8).
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-$REPO/runs/pathology-demo-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$REPO"

PYTHON=${PYTHON:-python}
export KERAS_BACKEND=${KERAS_BACKEND:-jax}
if [ "${INSTALL:-1}" = 1 ]; then
    "$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[jax,mnist,gigapixel]"
fi

ats() { "$PYTHON" -m ats.cli "$@"; }
start=$(date +%s)
echo "=== writing the slides"
ats datasets demo-slides "$OUT/slides" --n-slides "${N_SLIDES:-12}"
echo "=== training ($(($(date +%s) - start)) s)"
ats fit --data "$OUT/slides/manifest.csv" --run-dir "$OUT/run" --quiet \
    --patch-mpp 0.5 --low-mpp 32 --mask tissue \
    --patch-size 64x64 --n-patches 8 --batch-size 4 \
    --epochs "${EPOCHS:-8}" --learning-rate 0.001
echo "=== evaluating ($(($(date +%s) - start)) s)"
ats evaluate --run-dir "$OUT/run" --quiet
echo "=== predicting ($(($(date +%s) - start)) s)"
ats predict --run-dir "$OUT/run" --data "$OUT/slides/manifest.csv" \
    --out "$OUT/predictions" --quiet
echo "=== done in $(($(date +%s) - start)) s"
echo
echo "Metrics (per slide and per case): $OUT/run/evaluation.md"
echo "Predictions:  $OUT/predictions/predictions.csv"
echo "Heatmaps:     $OUT/predictions/heatmaps/*.png"
echo "For QuPath:   $OUT/predictions/overlays/*.geojson (and *_attention.tif)"
echo "Structures:   $OUT/slides/structures.json (the tumour nests' boxes)"
