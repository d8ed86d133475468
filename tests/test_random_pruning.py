"""Random pruning (`--method=random`): the sanity baseline, built from one module on the
shared pruning step (`methods.pruning`)."""

import keras
import numpy as np
import pytest
from conftest import tiny_config

from keras_lottery import methods, search
from keras_lottery.layers import CSDense, masked_layers


def _model():
    keras.utils.set_random_seed(0)
    arguments = methods.RandomPruning().layer_arguments()
    return keras.Sequential([keras.Input((20,)), CSDense(30, name="a", **arguments),
                             CSDense(10, name="b", **arguments)])


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_removes_the_fraction_of_the_survivors_at_random_and_repeatably(scope):
    masks = {}
    for seed in (0, 0, 1):
        model = _model()
        layers = masked_layers(model)
        method = methods.RandomPruning(0.3, scope, seed=seed)
        method.round_end(layers)
        after_one = [layer.ticket_mask().copy() for layer in layers]
        method.round_end(layers)
        masks.setdefault(seed, []).append([layer.ticket_mask() for layer in layers])
        kept_one = sum(int(m.sum()) for m in after_one)
        assert kept_one == 900 - round(0.3 * 900)
        assert sum(int(layer.ticket_mask().sum()) for layer in layers) == (
            kept_one - round(0.3 * kept_one))
        if scope == "layerwise":
            assert [int(m.sum()) for m in after_one] == [600 - 180, 300 - 90]
        # Removed weights stay removed.
        for before, layer in zip(after_one, layers):
            assert not (layer.ticket_mask() & ~before).any()
    first, again = masks[0]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)  # same seed and state: the same weights go
    assert any((a != b).any() for a, b in zip(first, masks[1][0]))  # another seed: others


def test_random_pruning_does_not_follow_magnitude():
    model = _model()
    layer = masked_layers(model)[0]
    weights = np.abs(layer.unmasked_kernel.numpy())
    methods.RandomPruning(0.5, "layerwise").round_end([layer])
    removed = weights[~layer.ticket_mask()]
    kept = weights[layer.ticket_mask()]
    # IMP would remove exactly the smaller half; at random both halves look alike.
    assert removed.max() > kept.min()
    assert abs(np.median(removed) - np.median(kept)) < 0.25 * np.median(weights)


def test_a_random_pruning_search_records_its_rounds(idx_dir, tmp_path):
    config = tiny_config(idx_dir, tmp_path / "run", method="random", rounds=2,
                         prune_fraction=0.5, prune_scope="global", ticket_epochs=1)
    results = search.run(config)
    assert [record["method"] for record in results["rounds"]] == ["random", "random"]
    assert [record["remaining"] for record in results["rounds"]] == pytest.approx(
        [0.5, 0.25], abs=1e-4)
    assert all(record["ticket_accuracy"] is not None for record in results["rounds"])
    assert results["flags"]["method"] == "random"
