
"""Real behaviour of CS on Fashion-MNIST subsets: binarization, lambda -> sparsity, tickets."""

import os

import keras
import numpy as np
import pytest

from keras_lottery import data, models, tickets
from keras_lottery.callbacks import RoundManager, TemperatureCallback
from keras_lottery.layers import masked_layers
from keras_lottery.search.config import SearchConfig
from keras_lottery.search.model_setup import compile_model
from keras_lottery.tickets import snapshots as weights_lib

pytestmark = pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_FASHION_MNIST),
    reason="needs the dataset-fashion-mnist Debian package (installed by .ci/run)")


@pytest.fixture(scope="module")
def fashion():
    splits = data.load("fashion_mnist", validation_examples=1000, train_examples=4000)
    return splits


# The paper's CS recipe: SGD with Nesterov momentum for w and s.
RECIPE = SearchConfig(optimizer="sgd", learning_rate=0.1, weight_decay=0.0)


def _search_model(splits, mask_penalty, mask_init=-0.01, seed=0):
    keras.utils.set_random_seed(seed)
    model = models.build("lenet300_100", splits.input_shape, splits.num_classes,
                         mask_init=mask_init, mask_penalty=mask_penalty)
    return compile_model(model, RECIPE)


def _fit(model, splits, callbacks, epochs=3):
    model.fit(splits.x_train, splits.y_train, batch_size=50, epochs=epochs, verbose=0,
              callbacks=callbacks)


def test_masks_binarize_under_annealing(fashion):
    model = _search_model(fashion, mask_penalty=1e-5)
    _fit(model, fashion, [TemperatureCallback(final_temperature=300.0)], epochs=10)
    soft = np.concatenate([np.ravel(layer.soft_mask()) for layer in masked_layers(model)])
    undecided = np.mean((soft > 0.01) & (soft < 0.99))
    assert undecided < 0.01, f"{undecided:.2%} of the soft mask is between 0.01 and 0.99"
    # The soft mask agrees with the ticket b(s) almost everywhere.
    ticket = np.concatenate([np.ravel(layer.ticket_mask()) for layer in masked_layers(model)])
    assert np.mean((soft > 0.5) == ticket) > 0.999


def test_remaining_fraction_falls_as_lambda_grows(fashion):
    remaining = []
    for penalty in (1e-7, 1e-6, 1e-5):
        model = _search_model(fashion, mask_penalty=penalty)
        _fit(model, fashion, [TemperatureCallback(final_temperature=200.0)], epochs=3)
        remaining.append(tickets.remaining_fraction(tickets.extract_masks(model)))
    assert remaining[0] > remaining[1] > remaining[2], remaining
    assert remaining[2] < 0.5 * remaining[0], remaining


def test_ticket_retrains_with_removed_weights_held_at_zero(fashion):
    model = _search_model(fashion, mask_penalty=1e-6)
    manager = RoundManager(ticket_epoch=0)
    _fit(model, fashion, [TemperatureCallback(final_temperature=200.0), manager], epochs=3)
    masks = manager.tickets[-1]
    assert 0.0 < tickets.remaining_fraction(masks) < 0.7
    ticket = tickets.build_ticket(model, masks, manager.ticket_weights)
    # The ticket starts from w_0, with masks fixed to b(s_T).
    start = weights_lib.snapshot(ticket)
    for index, (path, value) in manager.ticket_weights.items():
        np.testing.assert_array_equal(start[index][1], value, err_msg=path)
    for layer in masked_layers(ticket):
        assert layer.mask_rule == "fixed" and not layer.mask_logits.trainable
        np.testing.assert_array_equal(layer.ticket_mask(), masks[layer.name])
    compile_model(ticket, RECIPE)
    before = {layer.name: layer.unmasked_kernel.numpy() for layer in masked_layers(ticket)}
    _fit(ticket, fashion, [], epochs=2)
    for layer in masked_layers(ticket):
        mask = masks[layer.name]
        kernel = layer.unmasked_kernel.numpy()
        # Removed weights get no gradient and contribute exactly zero.
        np.testing.assert_array_equal(kernel[~mask], before[layer.name][~mask])
        assert not np.allclose(kernel[mask], before[layer.name][mask])
        assert np.all(layer.kernel.numpy()[~mask] == 0)
        np.testing.assert_array_equal(layer.ticket_mask(), mask)
    accuracy = ticket.evaluate(fashion.x_test[:2000], fashion.y_test[:2000], verbose=0,
                               return_dict=True)["accuracy"]
    assert accuracy > 0.7


def test_masks_npz_round_trip_without_pickle(tmp_path):
    masks = {"fc1": np.array([[True, False]]), "output": np.zeros((2, 3), bool)}
    path = str(tmp_path / "t" / "round_1.npz")
    tickets.save_masks(path, masks)
    loaded = tickets.load_masks(path)
    assert set(loaded) == set(masks)
    for name in masks:
        np.testing.assert_array_equal(loaded[name], masks[name])
    assert tickets.remaining_fraction(loaded) == pytest.approx(1 / 8)


def test_apply_masks_rejects_mismatched_tickets():
    model = models.build("lenet300_100", (28, 28, 1), 10)
    with pytest.raises(ValueError, match="missing"):
        tickets.apply_masks(model, {"fc1": np.ones((784, 300), bool)})
    good = tickets.extract_masks(model)
    good["fc1"] = np.ones((3, 3), bool)
    with pytest.raises(ValueError, match="shape"):
        tickets.apply_masks(model, good)
