"""``ats.data.ShuffledSequence``: the order of the items, epoch by epoch."""

import numpy as np
import pytest

from ats.data import ShuffledSequence


class Items(ShuffledSequence):
    """Batches of the item indices themselves."""

    def __getitem__(self, index):
        return self.batch_indices(index)


def epoch(sequence):
    return np.concatenate([sequence[i] for i in range(len(sequence))])


def test_in_order_without_shuffling():
    items = Items(7, batch_size=3)
    assert len(items) == 3
    assert [items[i].tolist() for i in range(3)] == [[0, 1, 2], [3, 4, 5], [6]]
    items.on_epoch_end()
    assert epoch(items).tolist() == list(range(7))


def test_shuffled_order_is_a_permutation_drawn_from_seed_and_epoch():
    first, again = (
        Items(10, 4, shuffle=True, seed=5),
        Items(10, 4, shuffle=True, seed=5),
    )
    orders = []
    for _ in range(3):
        order = epoch(first)
        assert sorted(order.tolist()) == list(range(10))
        np.testing.assert_array_equal(order, epoch(again))
        orders.append(order)
        first.on_epoch_end()
        again.on_epoch_end()
    assert first.epoch == 3
    assert not np.array_equal(orders[0], orders[1])
    assert not np.array_equal(epoch(Items(10, 4, shuffle=True, seed=6)), orders[0])


def test_setting_the_epoch_gives_its_order():
    """A resumed run sets ``epoch`` and sees the order it would have seen."""
    uninterrupted = Items(9, 2, shuffle=True, seed=1)
    for _ in range(2):
        uninterrupted.on_epoch_end()
    resumed = Items(9, 2, shuffle=True, seed=1)
    resumed.epoch = 2
    np.testing.assert_array_equal(epoch(resumed), epoch(uninterrupted))


def test_batch_index_out_of_range():
    items = Items(5, 2)
    with pytest.raises(IndexError, match="out of range"):
        items[3]
    with pytest.raises(IndexError, match="out of range"):
        items[-1]


@pytest.mark.parametrize(
    "kwargs, error, name",
    [
        ({"n_items": 0}, ValueError, "n_items"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"shuffle": 1}, TypeError, "shuffle"),
        ({"seed": -1}, ValueError, "seed"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, error, name):
    arguments = {"n_items": 4, **kwargs}
    with pytest.raises(error, match=f"`{name}`"):
        Items(**arguments)


def test_numpy_integers_are_accepted():
    items = Items(np.int64(6), batch_size=np.int32(4), seed=np.int64(2))
    assert len(items) == 2 and items.n_items == 6
