"""One definition of a ticket (`s > 0`), the defaults of `s0`, and `strip` against the
saturated masked model."""

import warnings

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery.layers import CSDense, masked_layers
from keras_lottery.layers.mask_rules import kept
from keras_lottery.layers.masked_layer import DEFAULT_MASK_INIT
from keras_lottery.methods import TemperatureCallback, set_temperature


def _model():
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="out")(x))


def _data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 6, 6, 1)).astype("float32")
    x[:, :, :3] = 0.0  # dead inputs: their weights and logits get no gradient
    return x, rng.integers(0, 3, 64)


@pytest.mark.parametrize("method", ["cs", "iss", "imp", "random"])
def test_strip_equals_the_saturated_model_for_every_default(method):
    x, y = _data()
    model = keras_lottery.sparsify(_model(), method=method)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss=keras.losses.
                  SparseCategoricalCrossentropy(from_logits=True))
    callbacks = [TemperatureCallback(final_temperature=500.0)] if method == "cs" else []
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=callbacks)
    hidden = model.get_layer("hidden")
    logits = hidden.mask_logits.numpy()
    assert not np.any(logits == 0.0), "a default s0 is the tie at 0"
    if method == "cs":
        assert hidden.mask_init == DEFAULT_MASK_INIT
        set_temperature(model, 1e8)  # saturated: sigmoid(beta*s) is 0 or 1 unless s == 0
    assert sum(layer.undecided_groups() for layer in masked_layers(model)) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # saturated masks: no warning
        stripped = keras_lottery.strip(model)
    np.testing.assert_allclose(stripped.predict(x, verbose=0), model.predict(x, verbose=0),
                               atol=1e-5)


def test_a_tie_at_zero_is_dropped_by_every_reader_and_strip_warns_of_it():
    layer = CSDense(4, mask_init=0.0)
    layer.build((None, 3))
    assert not kept(layer.mask_logits.numpy()).any()
    assert not layer.ticket_mask().any() and layer.remaining_fraction() == 0.0
    assert layer.undecided_groups() == 12  # sigmoid(beta * 0) = 1/2 at any beta
    model = keras.Sequential([keras.Input((3,)), layer])
    with pytest.warns(UserWarning, match="12 of 12 mask groups have not saturated"):
        keras_lottery.strip(model)


def test_a_fresh_cs_model_keeps_nothing_and_a_positive_s0_keeps_everything():
    fresh = keras_lottery.sparsify(_model())
    assert all(layer.remaining_fraction() == 0.0 for layer in masked_layers(fresh))
    kept_all = keras_lottery.sparsify(_model(), mask_init=0.05, mask_scaling=True)
    assert all(layer.remaining_fraction() == 1.0 for layer in masked_layers(kept_all))
