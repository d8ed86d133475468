"""`export_tflite`: the ticket as a .tflite file whose outputs equal the Keras model's; block
tickets keep their fully connected weights sparse (no DENSIFY)."""

import os
import warnings

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import models, tickets
from keras_lottery.layers import masked_layers


def _ticket(granularity, kept=0.05, seed=0):
    keras.utils.set_random_seed(seed)
    model = models.build("lenet300_100", (28, 28, 1), 10, mask_granularity=granularity)
    rng = np.random.RandomState(seed)
    for layer in masked_layers(model):
        layer.mask_logits.assign(np.where(rng.rand(*layer.mask_logits.shape) < kept, 1.0,
                                          -1.0).astype("float32"))
    return model, rng


def test_a_block_ticket_converts_sparse_and_runs_as_keras_does(tmp_path):
    model, rng = _ticket("block")
    report = tickets.export_tflite(model, str(tmp_path / "ticket.tflite"))
    assert report["fully_connected"] == {"fc1": "sparse", "fc2": "sparse", "output": "sparse"}
    assert os.path.getsize(tmp_path / "ticket.tflite") == report["bytes"] < 200_000
    x = rng.rand(7, 28, 28, 1).astype("float32")
    runner = tickets.TFLiteModel(str(tmp_path / "ticket.tflite"))
    expected = keras_lottery.strip(model).predict(x, verbose=0)
    np.testing.assert_allclose(runner(x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(runner(x[:1]), expected[:1], rtol=1e-5, atol=1e-5)


def test_unit_and_shrunk_tickets_export_dense_and_equal(tmp_path):
    model, rng = _ticket("unit", kept=0.3)
    small = keras_lottery.shrink(model)
    report = tickets.export_tflite(small, str(tmp_path / "shrunk.tflite"))
    assert set(report["fully_connected"].values()) == {"dense"}
    x = rng.rand(5, 28, 28, 1).astype("float32")
    np.testing.assert_allclose(tickets.TFLiteModel(str(tmp_path / "shrunk.tflite"))(x),
                               small.predict(x, verbose=0), rtol=1e-5, atol=1e-5)


def test_a_block_layer_that_stays_dense_is_named(tmp_path):
    model, _ = _ticket("block", kept=1.0)  # nothing removed: the converter keeps it dense
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = tickets.export_tflite(model, str(tmp_path / "t.tflite"))
    assert report["fully_connected"]["fc1"] != "sparse"
    assert any("fc1" in str(w.message) and "stayed dense" in str(w.message) for w in caught)


def test_a_path_in_a_missing_folder_is_one_error_and_writes_nothing(tmp_path):
    model, _ = _ticket("block")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tickets.export_tflite(model, str(tmp_path / "nope" / "t.tflite"))
    assert not (tmp_path / "nope").exists()
