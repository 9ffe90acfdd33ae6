"""The original library's ``ats.utils.training`` (``Batcher``,
``DataTransform``, ``LambdaTransform``, ``compose_sequences``) on Keras 3's
``PyDataset``, and ``ImagePan``'s original mode names."""

import warnings

import keras
import numpy as np
import pytest

from ats.utils.layers import ImagePan
from ats.utils.training import (
    Batcher,
    DataTransform,
    LambdaTransform,
    compose_sequences,
)


class Points(keras.utils.Sequence):
    """A per-data-point sequence as the original scripts wrote them (no
    ``super().__init__()``), counting its ``on_epoch_end`` calls."""

    def __init__(self, n):
        self.n = n
        self.epochs_ended = 0

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        x_low = np.full((4, 4, 1), i, "float32")
        x_high = np.full((8, 8, 1), i, "float32")
        return [x_low, x_high], np.eye(2, dtype="float32")[i % 2]

    def on_epoch_end(self):
        self.epochs_ended += 1


def _ids(batch):
    (x_low, _), _ = batch
    return x_low[:, 0, 0, 0].astype(int).tolist()


def test_batcher_stacks_points_into_batches():
    batches = Batcher(Points(5), 2, shuffle=False)
    assert len(batches) == 3
    (x_low, x_high), y = batches[0]
    assert isinstance(batches[0][0], tuple)  # TensorFlow refuses lists
    assert x_low.shape == (2, 4, 4, 1) and x_high.shape == (2, 8, 8, 1)
    assert y.shape == (2, 2)
    assert [_ids(batches[i]) for i in range(3)] == [[0, 1], [2, 3], [4]]
    with pytest.raises(IndexError, match="out of range"):
        batches[3]


def test_batcher_default_batch_size_is_the_originals():
    assert Batcher(Points(40)).batch_size == 16


def test_batcher_shuffles_from_its_seed_and_ends_the_inner_epoch():
    points = Points(7)
    batches = Batcher(points, 3, seed=4)
    again = Batcher(Points(7), 3, seed=4)
    for _ in range(3):
        seen = [i for b in range(len(batches)) for i in _ids(batches[b])]
        assert sorted(seen) == list(range(7))
        assert seen == [i for b in range(len(again)) for i in _ids(again[b])]
        batches.on_epoch_end()
        again.on_epoch_end()
    assert points.epochs_ended == 3
    orders = {tuple(Batcher(Points(7), 7, seed=s)[0][1].argmax(1)) for s in range(5)}
    assert len(orders) > 1


def test_batcher_over_a_plain_list_and_dicts():
    points = [({"low": np.zeros(2) + i}, i) for i in range(3)]
    batches = Batcher(points, 3, shuffle=False)
    x, y = batches[0]
    assert x["low"].shape == (3, 2) and y.tolist() == [0, 1, 2]
    batches.on_epoch_end()  # a list has no on_epoch_end: nothing to call


def test_batcher_refuses_bad_arguments():
    with pytest.raises(TypeError, match="Batcher: `sequence` must be a sequence"):
        Batcher(3)
    with pytest.raises(ValueError, match="must not be empty"):
        Batcher([])
    with pytest.raises(ValueError, match="`batch_size` must be an int >= 1"):
        Batcher(Points(3), 0)


def test_transforms_and_compose_sequences():
    points = Points(4)
    sequence = compose_sequences(
        points,
        [
            (Batcher, 2, False),
            (LambdaTransform, lambda x: [xi + 100 for xi in x]),
        ],
    )
    assert isinstance(sequence, LambdaTransform) and len(sequence) == 2
    (x_low, x_high), y = sequence[1]
    assert x_low[:, 0, 0, 0].tolist() == [102, 103] and y.shape == (2, 2)
    sequence.on_epoch_end()
    assert points.epochs_ended == 1

    class Abstract(DataTransform):
        pass

    with pytest.raises(NotImplementedError, match="implements _transform"):
        Abstract(Batcher(points, 2))[0]
    with pytest.raises(TypeError, match="`transform_function` must be a callable"):
        LambdaTransform(Batcher(points, 2), 3)
    with pytest.raises(TypeError, match=r"`sequences` must be a list of tuples"):
        compose_sequences(points, [Batcher])


def test_fit_and_evaluate_on_a_batcher():
    x_low, x_high = keras.Input((4, 4, 1)), keras.Input((8, 8, 1))
    pooled = keras.layers.Concatenate()(
        [
            keras.layers.GlobalAveragePooling2D()(x_low),
            keras.layers.GlobalAveragePooling2D()(x_high),
        ]
    )
    model = keras.Model([x_low, x_high], keras.layers.Dense(2)(pooled))
    model.compile("adam", keras.losses.CategoricalCrossentropy(from_logits=True))
    points = Points(10)
    with warnings.catch_warnings():
        # The original's per-point Sequence does not call super().__init__().
        warnings.simplefilter("ignore", UserWarning)
        history = model.fit(Batcher(points, 4), epochs=2, verbose=0)
        loss = model.evaluate(Batcher(Points(6), 4), verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(loss)
    # Keras ends every epoch (and, depending on its version, once more).
    assert points.epochs_ended >= 2


@pytest.mark.parametrize(
    "original, modern", [("NEAREST", "nearest"), ("BILINEAR", "bilinear")]
)
def test_image_pan_accepts_the_original_modes(original, modern):
    with pytest.warns(DeprecationWarning, match=f'write mode="{modern}"') as record:
        pan = ImagePan(pixels=3, p=1.0, vertically=True, mode=original, seed=2)
    assert record[0].filename == __file__
    assert pan.mode == modern and pan.get_config()["mode"] == modern
    reference = ImagePan(pixels=3, p=1.0, vertically=True, mode=modern, seed=2)
    images = np.random.default_rng(0).random((3, 10, 10, 1)).astype("float32")
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(pan(images, training=True)),
        keras.ops.convert_to_numpy(reference(images, training=True)),
    )


@pytest.mark.parametrize("mode", ["Nearest", "NEAR", "BICUBIC", 1])
def test_image_pan_refuses_other_modes(mode):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        with pytest.raises(ValueError, match="`mode` must be one of"):
            ImagePan(mode=mode)
