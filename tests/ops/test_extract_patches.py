"""``ats.ops.extract_patches`` against a numpy slice-copy reference."""

import keras
import numpy as np
import pytest
from autodiff import gradients
from keras import ops

from ats.ops import extract_patches, patch_offsets


def reference_patches(x, offsets, size):
    """Channels-last numpy reference: zero-padded slice copies."""
    batch, n = offsets.shape[:2]
    out = np.zeros((batch, n, *size, x.shape[-1]), dtype=x.dtype)
    for b in range(batch):
        for i in range(n):
            source, target = [], []
            for d, (o, s) in enumerate(zip(offsets[b, i], size)):
                lo, hi = max(o, 0), min(o + s, x.shape[1 + d])
                source.append(slice(lo, max(hi, lo)))
                target.append(slice(lo - o, lo - o + max(hi - lo, 0)))
            out[(b, i, *target)] = x[(b, *source)]
    return out


def backend_dtype(dtype):
    """The dtype the active backend stores a numpy array of ``dtype`` in."""
    return keras.backend.standardize_dtype(
        ops.convert_to_tensor(np.zeros(1, dtype=dtype)).dtype
    )


# "auto" is the backend's fast path where it has one (JAX, PyTorch).
IMPLEMENTATIONS = pytest.mark.parametrize("implementation", ["generic", "auto"])


@IMPLEMENTATIONS
@pytest.mark.parametrize(
    "spatial,size",
    [
        ((37,), (5,)),
        ((20, 31), (6, 4)),
        ((9, 11, 13), (3, 4, 2)),
    ],
)
def test_matches_reference_with_overhang(spatial, size, implementation, rng):
    x = rng.normal(size=(3, *spatial, 2)).astype("float32")
    low = [-s for s in size]
    high = list(spatial)
    offsets = np.stack(
        [rng.integers(lo, hi, size=(3, 7)) for lo, hi in zip(low, high)], axis=-1
    )
    offsets = offsets.astype("int32")
    offsets[0, 0] = [-100] * len(size)  # entirely outside
    result = ops.convert_to_numpy(
        extract_patches(x, offsets, size, implementation=implementation)
    )
    np.testing.assert_array_equal(result, reference_patches(x, offsets, size))


@IMPLEMENTATIONS
@pytest.mark.parametrize(
    "dtype", ["uint8", "uint16", "float16", "bfloat16", "float32", "float64"]
)
def test_preserves_dtype(dtype, implementation, rng):
    values = rng.integers(0, 250, size=(2, 12, 10, 3))
    x = ops.cast(values, backend_dtype(dtype))
    offsets = np.array([[[0, 0], [8, 7]], [[-2, 3], [5, 5]]], dtype="int32")
    result = extract_patches(x, offsets, (4, 4), implementation=implementation)
    assert keras.backend.standardize_dtype(result.dtype) == backend_dtype(dtype)
    np.testing.assert_array_equal(
        ops.convert_to_numpy(ops.cast(result, "float32")),
        reference_patches(values.astype("float32"), offsets, (4, 4)),
    )


@IMPLEMENTATIONS
def test_channels_first(implementation, rng):
    x = rng.normal(size=(2, 3, 15, 16)).astype("float32")
    offsets = rng.integers(-4, 14, size=(2, 5, 2)).astype("int32")
    result = ops.convert_to_numpy(
        extract_patches(
            x,
            offsets,
            (5, 6),
            data_format="channels_first",
            implementation=implementation,
        )
    )
    expected = reference_patches(np.moveaxis(x, 1, -1), offsets, (5, 6))
    np.testing.assert_array_equal(result, np.moveaxis(expected, -1, 2))


@IMPLEMENTATIONS
def test_no_gradient_flows_into_the_image(implementation, rng):
    x = rng.normal(size=(1, 8, 8, 1)).astype("float32")
    offsets = np.array([[[1, 2]]], dtype="int32")
    _, (grad,) = gradients(
        lambda x: ops.sum(
            extract_patches(x, offsets, (3, 3), implementation=implementation)
        ),
        x,
    )
    np.testing.assert_array_equal(grad, 0)


@IMPLEMENTATIONS
def test_indices_do_not_overflow_across_the_batch(implementation):
    """B * H * W >= 2**31: indices are taken within each image."""
    batch, side = 3, 27000
    assert batch * side * side >= 2**31
    x = np.zeros((batch, side, side, 1), dtype="uint8")
    x[2, side - 1, side - 2, 0] = 7
    x[2, 0, 1, 0] = 9
    offsets = np.array([[[0, 0]], [[0, 0]], [[side - 2, side - 3]]], dtype="int32")
    result = ops.convert_to_numpy(
        extract_patches(x, offsets, (2, 2), implementation=implementation)
    )
    assert result[2, 0, 1, 1, 0] == 7
    assert result[:2].sum() == 0 and result[2].sum() == 7


@pytest.mark.parametrize(
    "x_shape,offsets_shape,size,error",
    [
        ((2, 5, 5, 5, 5, 1), (2, 1, 4), (1, 1, 1, 1), "rank 3 to 5"),
        ((2, 8, 8, 1), (2, 1, 2), (3,), "size"),
        ((2, 8, 8, 1), (2, 1, 2), (3, 0), "size"),
        ((2, 8, 8, 1), (2, 1, 3), (3, 3), "offsets"),
    ],
)
def test_bad_input_raises(x_shape, offsets_shape, size, error):
    with pytest.raises(ValueError, match=error):
        extract_patches(
            np.zeros(x_shape, "float32"), np.zeros(offsets_shape, "int32"), size
        )


def test_fast_path_is_only_where_the_backend_has_one(backend):
    x, offsets = np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 1, 2), "int32")
    if backend == "tensorflow":
        with pytest.raises(ValueError, match="no fast path"):
            extract_patches(x, offsets, (2, 2), implementation="fast")
    else:
        assert extract_patches(x, offsets, (2, 2), implementation="fast").shape == (
            1,
            1,
            2,
            2,
            1,
        )
    with pytest.raises(ValueError, match="implementation"):
        extract_patches(x, offsets, (2, 2), implementation="cuda")


def test_patch_offsets_formula():
    """Cell s of S covers [r/2, L - r/2): centre r/2 + (s + .5)(L - r)/S,
    scaled by H/L, minus half the patch, rounded."""
    samples = np.array([[[0, 0], [3, 9], [1, 4]]])
    r, low, high, patch, space = 4, (24, 44), (96, 88), (8, 5), (4, 10)
    corners = ops.convert_to_numpy(
        patch_offsets(
            samples, space, np.subtract(low, r), patch, np.divide(high, low), r / 2
        )
    )
    centre = r / 2 + (samples + 0.5) * (np.subtract(low, r) / space)
    expected = np.round(centre * np.divide(high, low) - np.divide(patch, 2))
    np.testing.assert_array_equal(corners, expected.astype("int32"))
