"""Command-line arguments of a tiny Megapixel MNIST data set and run, shared
by the tests that drive ``ats mnist`` through the CLI."""

# ats mnist make-data: 16 + 8 images of 100x100, no noise.
DATA = [
    "--width", "100", "--height", "100", "--scale", "0.25", "--no-noise",
    "--n-train", "16", "--n-test", "8", "--seed", "2",
]  # fmt: skip
# ats mnist train: one epoch of a tiny model.
TRAIN = [
    "--epochs", "1", "--batch-size", "8", "--n-patches", "2",
    "--patch-size", "30x30", "--filters", "4",
]  # fmt: skip
