"""The pictures are written and are valid PNG files."""

import numpy as np
import pytest
from PIL import Image

from ats.models import megapixel_mnist as models
from ats.training.pictures import save_attention_figure, save_training_curves

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def assert_png(path, min_size=(300, 200)):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.size[0] >= min_size[0] and image.size[1] >= min_size[1]
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 5  # not a blank canvas
    assert not list(path.parent.glob(".*.tmp"))


def test_attention_figure_of_an_ats_model(tmp_path):
    rng = np.random.default_rng(0)
    x_high = np.zeros((2, 96, 96, 1), "float32")
    x_high[:, 20:48, 30:58] = rng.random((2, 28, 28, 1))
    x_low = x_high.reshape(2, 16, 6, 16, 6, 1).mean(axis=(2, 4))
    model = models.ats_model(
        (16, 16, 1),
        (96, 96, 1),
        n_patches=3,
        patch_size=(30, 30),
        filters=4,
        attention_filters=2,
        seed=0,
    )
    seen = models.inspect(model, x_low, x_high, seed=1)
    path = tmp_path / "pictures" / "attention.png"
    save_attention_figure(path, x_high, seen, labels=[3, 4], title="epoch 1")
    assert_png(path, min_size=(600, 600))


def test_attention_figure_checks_its_inputs(tmp_path):
    seen = {
        "attention": np.zeros((2, 4, 4)),
        "corners": np.zeros((2, 1, 2)),
        "patches": np.zeros((2, 1, 8, 8, 1)),
        "probabilities": np.full((2, 10), 0.1),
    }
    with pytest.raises(ValueError, match="x_high"):
        save_attention_figure(tmp_path / "a.png", np.zeros((2, 32, 32)), seen)
    with pytest.raises(ValueError, match="same images"):
        save_attention_figure(tmp_path / "a.png", np.zeros((3, 32, 32, 1)), seen)


def test_training_curves(tmp_path):
    history = [
        {
            "epoch": e,
            "loss": 2.3 / e,
            "error": 0.9 / e,
            "test_loss": 2.4 / e,
            "test_error": 0.95 / e,
        }
        for e in range(1, 5)
    ]
    path = tmp_path / "curves.png"
    save_training_curves(path, history, title="ats")
    assert_png(path, min_size=(800, 300))
    with pytest.raises(ValueError, match="history"):
        save_training_curves(path, [])
    # Any metric with a train and a test column gets its own panel.
    losses_only = [
        {"epoch": row["epoch"], "loss": row["loss"], "test_loss": row["test_loss"]}
        for row in history
    ]
    save_training_curves(path, losses_only)
    assert_png(path, min_size=(400, 300))
