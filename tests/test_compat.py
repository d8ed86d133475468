"""Pins the Keras internals that `keras_lottery.compat` relies on."""

import keras
import numpy as np
import pytest

from keras_lottery import compat, layers


def _model():
    return keras.Sequential([keras.Input((6,)),
                             layers.CSDense(4, mask_init=0.5, mask_penalty=1e-2),
                             layers.CSDense(2, mask_init=0.5, mask_penalty=1e-2)])


def _expected_penalty(model):
    return sum(1e-2 * float(np.sum(1 / (1 + np.exp(-0.5 * np.ones(l.mask_logits.shape)))))
               for l in layers.masked_layers(model))


def test_model_losses_hold_each_penalty_once_per_call():
    """`Model.losses` reads `_get_own_losses` of every layer; the model's call clears them first."""
    model = _model()
    x = np.ones((3, 6), "float32")
    for training in (True, True, False):  # evaluation reports the penalty too
        model(x, training=training)
        assert len(model.losses) == 2
        assert float(sum(model.losses)) == pytest.approx(_expected_penalty(model), rel=1e-6)


def test_stateless_call_returns_the_penalty():
    """Keras's stateless calls collect losses in their scope (`add_replica_loss` defers to it)."""
    model = _model()
    model(np.ones((3, 6), "float32"))
    _, _, losses = model.stateless_call(
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        np.ones((3, 6), "float32"), training=True, return_losses=True)
    assert len(losses) == 2
    assert float(sum(losses)) == pytest.approx(_expected_penalty(model), rel=1e-6)


def test_penalty_enters_the_gradient_of_a_fit_step():
    """The trainer adds `Model.losses` to the loss: with no data gradient on `s` (w = 0),
    one SGD step moves `s` by exactly lr * lambda * sigmoid'(s)."""
    model = _model()
    model.build((None, 6))
    for layer in layers.masked_layers(model):
        layer.unmasked_kernel.assign(np.zeros(layer.unmasked_kernel.shape, "float32"))
    model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
    model.fit(np.ones((4, 6), "float32"), np.zeros((4, 2), "float32"), batch_size=4, verbose=0)
    sigmoid = 1 / (1 + np.exp(-0.5))
    for layer in layers.masked_layers(model):
        step = 0.5 - layer.mask_logits.numpy()
        np.testing.assert_allclose(step, 1e-2 * sigmoid * (1 - sigmoid), rtol=1e-5)


def test_replica_losses_of_finished_threads_are_dropped():
    import threading

    layer = layers.CSDense(2, mask_penalty=1.0)
    layer.build((None, 3))
    thread = threading.Thread(target=lambda: layer.add_replica_loss(keras.ops.ones(())))
    thread.start()
    thread.join()
    assert layer._get_own_losses() == []  # another thread's losses are not this one's
    layer._clear_losses()
    assert layer.__dict__["_losses_by_thread"] == {}


def test_steps_per_execution_for_one_replica_is_unchanged():
    import tensorflow as tf

    assert compat.steps_per_execution_for(tf.distribute.get_strategy(), 7) == 7


def test_flatten_layers_reaches_nested_models_and_sublayers():
    inner = keras.Sequential([keras.Input((6,)), layers.CSDense(4, name="inner_masked")])
    inputs = keras.Input((6,))
    outputs = layers.CSDense(2, name="outer_masked")(inner(inputs))
    model = keras.Model(inputs, outputs)
    names = [l.name for l in compat.flatten_layers(model)]
    assert "inner_masked" in names and "outer_masked" in names
    assert len(names) == len(set(names))
    assert [l.name for l in layers.masked_layers(model)] == ["inner_masked", "outer_masked"]
    assert layers.masked_layers(model.layers[-1]) == [model.layers[-1]]


def test_is_functional_tells_functional_from_sequential_and_subclassed():
    inputs = keras.Input((3,))
    functional = keras.Model(inputs, keras.layers.Dense(2)(inputs))

    class Subclassed(keras.Model):
        def call(self, x):
            return x

    assert compat.is_functional(functional)
    assert not compat.is_functional(_model())
    assert not compat.is_functional(Subclassed())


def test_optimizer_internals_used_by_mask_optimizer():
    model = _model()
    model.build((None, 6))
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    own = {v.name for v in compat.optimizer_own_variables(optimizer)}
    assert {"iteration", "learning_rate"} <= own and any("momentum" in n for n in own)
    from keras_lottery.optimizers import MaskOptimizer

    wrapper = MaskOptimizer(keras.optimizers.SGD(0.1, momentum=0.9), keras.optimizers.SGD(1.0))
    wrapper.build(model.trainable_variables)
    own = compat.optimizer_own_variables(wrapper)  # not the wrapped optimizers' momenta
    assert {v.name for v in own} == {"iteration", "learning_rate"}
    assert len(wrapper.variables) > len(own)
    assert [id(v) for v in compat.optimizer_trainable_variables(optimizer)] == [
        id(v) for v in model.trainable_variables]


def test_convolution_internals_read_by_the_masked_convolutions():
    causal = keras.layers.Conv1D(2, 3, padding="causal", dilation_rate=2)
    causal.build((None, 10, 4))
    assert [list(p) for p in compat.causal_padding(causal)] == [[0, 0], [4, 0], [0, 0]]
    first = keras.layers.DepthwiseConv2D(3, data_format="channels_first")
    last = keras.layers.DepthwiseConv2D(3)
    assert compat.input_channels(first, (None, 5, 8, 8)) == 5
    assert compat.input_channels(last, (None, 8, 8, 5)) == 5


def test_build_shapes_producing_layers_and_optimizer_slots():
    inputs = keras.Input((6,))
    dense = keras.layers.Dense(2, name="d")
    outputs = dense(inputs)
    model = keras.Model(inputs, outputs)
    assert compat.build_input_shape(dense) == (None, 6)
    assert compat.producing_layer(model.outputs[0]) is dense
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    optimizer.build(model.trainable_variables)
    slot = compat.optimizer_slot(optimizer, optimizer.momentums, dense.bias)
    assert tuple(slot.shape) == (2,) and slot is not compat.optimizer_slot(
        optimizer, optimizer.momentums, dense.kernel)
    plain = compat.plain_tf_variable(dense.kernel)
    assert plain is not None and hasattr(plain, "handle")


def test_retrace_rebuilds_the_train_function_inside_fit():
    model = _model()
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.ones((4, 6), "float32"), np.ones((4, 2), "float32")

    class Retrace(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.before = self.model.train_function
            compat.retrace_compiled_functions(self.model)
            self.after = self.model.train_function

    retrace = Retrace()
    model.fit(x, y, epochs=1, verbose=0, callbacks=[retrace])
    assert retrace.after is not None and retrace.after is not retrace.before
