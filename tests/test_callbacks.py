import math

import keras
import numpy as np
import pytest

from keras_lottery.callbacks import RoundManager, TemperatureCallback, reset_optimizer_state
from keras_lottery.layers import CSDense, masked_layers
from keras_lottery.methods import cs_mask_reset
from keras_lottery.tickets import snapshots as weights_lib

STEPS, EPOCHS, BATCH = 4, 3, 8


class BatchLosses(keras.callbacks.Callback):
    """Recovers each batch's own loss from Keras's running epoch mean."""

    def on_epoch_begin(self, epoch, logs=None):
        self._previous_mean, self._count = 0.0, 0

    def on_train_begin(self, logs=None):
        self.losses = []

    def on_train_batch_end(self, batch, logs=None):
        mean = float(logs["loss"])
        self.losses.append((self._count + 1) * mean - self._count * self._previous_mean)
        self._previous_mean, self._count = mean, self._count + 1


def _penalty_only_model(s_value, jit_compile):
    """A model whose loss is constant except the penalty sum(sigmoid(beta * s)).

    The kernel is zero and the learning rate is zero, so nothing trains and the
    loss seen in each step tells which beta the compiled step used.
    """
    model = keras.Sequential([
        keras.Input((2,)),
        CSDense(3, kernel_initializer="zeros", mask_init=s_value, mask_penalty=1.0),
    ])
    model.compile(optimizer=keras.optimizers.SGD(0.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=jit_compile)
    return model


@pytest.mark.parametrize("jit_compile", [False, True])
def test_temperature_changes_inside_compiled_train_step(jit_compile):
    s_value = 0.01
    model = _penalty_only_model(s_value, jit_compile)
    x = np.ones((STEPS * BATCH, 2), "float32")
    y = np.zeros(STEPS * BATCH, "int32")
    recorder = BatchLosses()
    schedule = TemperatureCallback(final_temperature=400.0)
    # The recorder runs before the schedule steps beta at the batch end.
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0, shuffle=False,
              callbacks=[recorder, schedule])
    total = STEPS * EPOCHS
    betas = [400.0 ** (t / total) for t in range(total)]
    expected = [math.log(3) + 6 * (1 / (1 + math.exp(-b * s_value))) for b in betas]
    np.testing.assert_allclose(recorder.losses, expected, rtol=1e-4)
    # After the last step beta is beta_T, the value the round-end reset uses.
    assert float(model.layers[0].temperature.numpy()) == pytest.approx(400.0)
    # No Python work per step: without a batch hook, Keras may dispatch other
    # callbacks' batch ends asynchronously.
    assert type(schedule).on_train_batch_end is keras.callbacks.Callback.on_train_batch_end


def test_temperature_per_epoch_steps_once_per_epoch():
    model = _penalty_only_model(0.01, False)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            seen.append(float(np.asarray(self.model.layers[0].temperature)))

    x, y = np.ones((STEPS * BATCH, 2), "float32"), np.zeros(STEPS * BATCH, "int32")
    model.fit(x, y, batch_size=BATCH, epochs=EPOCHS, verbose=0,
              callbacks=[TemperatureCallback(8.0, per_epoch=True), Record()])
    expected = np.repeat([8.0 ** (e / EPOCHS) for e in range(EPOCHS)], STEPS)
    np.testing.assert_allclose(seen, expected, rtol=1e-6)
    assert float(model.layers[0].temperature.numpy()) == pytest.approx(8.0)


@pytest.mark.parametrize("kwargs", [
    {"final_temperature": 0.5},
    {"final_temperature": 10.0, "initial_temperature": 0.0},
    {"final_temperature": float("inf")},
])
def test_temperature_rejects_bad_values(kwargs):
    with pytest.raises(ValueError, match="temperature"):
        TemperatureCallback(**kwargs)


def test_cs_reset_is_min_of_scaled_logits_and_s0():
    layer = CSDense(3, mask_init=-0.05)
    layer.build((None, 2))
    s_T = np.array([[0.2, -0.001, 0.0001], [-0.3, 0.00002, -0.00001]], "float32")
    layer.mask_logits.assign(s_T)
    layer.temperature.assign(200.0)
    cs_mask_reset(layer, initial_temperature=1.0)
    # min(beta_T * s_T, s0): removed weights keep beta_T * s_T, kept ones go back to s0.
    expected = np.array([[-0.05, -0.2, -0.05], [-60.0, -0.05, -0.05]], "float32")
    np.testing.assert_allclose(layer.mask_logits.numpy(), expected, rtol=1e-6)
    # The released code's min(s_T, s0) would leave -0.001 and -0.00001 in place.
    assert not np.allclose(layer.mask_logits.numpy(), np.minimum(s_T, -0.05))
    assert float(layer.temperature.numpy()) == 1.0


def _small_model():
    return keras.Sequential([
        keras.Input((4,)),
        CSDense(8, activation="relu", mask_init=0.02, name="a"),
        keras.layers.BatchNormalization(name="bn"),
        CSDense(2, mask_init=0.02, name="b"),
    ])


def _fit_round(model, manager, epochs=3):
    rng = np.random.RandomState(0)
    x, y = rng.randn(64, 4).astype("float32"), rng.randint(0, 2, 64)
    model.fit(x, y, batch_size=16, epochs=epochs, verbose=0,
              callbacks=[TemperatureCallback(100.0), manager])


def test_round_manager_rewinds_all_weights_and_records_ticket():
    model = _small_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    w0 = weights_lib.snapshot(model)
    manager = RoundManager(rewind_epoch=0)
    seen_end = {}

    class KeepEnd(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            for layer in masked_layers(self.model):
                seen_end[layer.name] = (layer.mask_logits.numpy(), float(layer.temperature.numpy()))

    rng = np.random.RandomState(0)
    x, y = rng.randn(64, 4).astype("float32"), rng.randint(0, 2, 64)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0,
              callbacks=[TemperatureCallback(100.0), KeepEnd(), manager])
    # The ticket is b(s_T), taken before the reset.
    for layer in masked_layers(model):
        s_T, beta_T = seen_end[layer.name]
        assert beta_T == pytest.approx(100.0)
        np.testing.assert_array_equal(manager.tickets[0][layer.name], s_T > 0)
        np.testing.assert_allclose(layer.mask_logits.numpy(), np.minimum(100.0 * s_T, 0.02),
                                   rtol=1e-6)
        assert float(layer.temperature.numpy()) == 1.0
    # Every non-mask variable (kernels, biases, BN statistics) is back at w_0.
    after = weights_lib.snapshot(model)
    assert set(after) == set(w0)
    for index, (path, value) in w0.items():
        np.testing.assert_array_equal(after[index][1], value, err_msg=path)
    assert int(model.optimizer.iterations.numpy()) == 0
    assert manager.round == 1


def test_round_manager_without_rewind_keeps_trained_weights_and_snapshots_ticket_epoch():
    model = _small_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    w0 = weights_lib.snapshot(model)
    manager = RoundManager(rewind_epoch=None, ticket_epoch=2)
    _fit_round(model, manager)
    trained = weights_lib.snapshot(model)
    index = next(i for i, (path, _) in w0.items() if path.endswith("a/kernel"))
    assert not np.allclose(trained[index][1], w0[index][1])
    assert manager.rewind_weights is None
    assert set(manager.snapshots) == {2}
    assert not np.allclose(manager.ticket_weights[index][1], w0[index][1])
    assert not np.allclose(manager.ticket_weights[index][1], trained[index][1])
    # A second round takes no new snapshot and appends a second ticket.
    _fit_round(model, manager)
    assert len(manager.tickets) == 2 and set(manager.snapshots) == {2}


def test_round_manager_rejects_snapshot_past_round_end():
    model = _small_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="past the end of the round"):
        _fit_round(model, RoundManager(rewind_epoch=5), epochs=2)


def test_reset_optimizer_state_keeps_learning_rate():
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9)
    variable = keras.Variable(np.ones(3, "float32"))
    optimizer.apply_gradients([(np.ones(3, "float32"), variable)])
    reset_optimizer_state(optimizer)
    assert int(optimizer.iterations.numpy()) == 0
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.1)
    assert all(np.all(v.numpy() == 0) for v in optimizer.variables
               if v.name != "learning_rate")


def test_target_remaining_shifts_logits_to_keep_exactly_the_target_and_keeps_their_order():
    from keras_lottery.callbacks import TargetRemaining, round_targets

    dense = CSDense(40, mask_penalty=1e-3)
    conv = CSDense(10, mask_penalty=1e-3)
    model = keras.Sequential([keras.Input((25,)), dense, conv])
    rng = np.random.RandomState(0)
    for layer in (dense, conv):
        layer.mask_logits.assign(rng.randn(*layer.mask_logits.shape).astype("float32"))
    before = np.concatenate([layer.mask_logits.numpy().ravel() for layer in (dense, conv)])
    controller = TargetRemaining(0.25, start=0.5, update_every=4)
    controller.set_model(model)
    controller.set_params({"epochs": 2, "steps": 10})
    controller.on_train_begin()
    controller.on_epoch_begin(0)
    for batch in range(9):  # steps 1..9: before half of the 20 steps, nothing moves
        controller.on_train_batch_end(batch)
    np.testing.assert_array_equal(
        np.concatenate([layer.mask_logits.numpy().ravel() for layer in (dense, conv)]), before)
    controller.on_train_batch_end(9)
    controller.on_epoch_begin(1)  # Keras numbers batches from 0 in every epoch
    for batch in range(10):  # steps 12, 16 and the last one (20) re-centre s
        controller.on_train_batch_end(batch)
    after = np.concatenate([layer.mask_logits.numpy().ravel() for layer in (dense, conv)])
    assert [step for step, _ in controller.history] == [12, 16, 20]
    assert np.sum(after > 0) == round(0.25 * after.size)  # exactly the target, over all layers
    shift = before - after
    np.testing.assert_allclose(shift, shift[0], atol=1e-5)  # one global shift: order kept
    assert round_targets(0.04, 2) == pytest.approx([0.2, 0.04])
    with pytest.raises(ValueError, match="fraction"):
        TargetRemaining(1.5)


class Temperatures(keras.callbacks.Callback):
    """`beta` as the training step about to run reads it, before every batch (after
    `TemperatureCallback`'s hook: on JAX it assigns `beta` there)."""

    def __init__(self, layer):
        super().__init__()
        self.layer, self.values = layer, []

    def on_train_batch_begin(self, batch, logs=None):
        _ = self.model  # on JAX, reading `model` puts the epoch's state back into the variables
        self.values.append(float(np.asarray(self.layer.current_temperature())))


@pytest.mark.parametrize("jit_compile", [False, True])
def test_a_shared_layer_anneals_on_the_schedule_however_often_it_is_called(jit_compile):
    # One CSDense applied to two inputs (a siamese model) and one applied once follow the
    # same schedule 1 -> 256 over 8 steps: beta_4 = 16, not 256.
    def build(calls):
        shared = CSDense(3, mask_init=0.01)
        inputs = keras.Input((2,))
        outputs = [shared(inputs) for _ in range(calls)]
        model = keras.Model(inputs, keras.layers.Add()(outputs) if calls > 1 else outputs[0])
        model.compile(optimizer=keras.optimizers.SGD(0.01), loss="mse", jit_compile=jit_compile)
        return model, shared

    x, y = np.ones((8 * BATCH, 2), "float32"), np.zeros((8 * BATCH, 3), "float32")
    temperatures = []
    for calls in (1, 2):
        model, layer = build(calls)
        record = Temperatures(layer)
        model.fit(x, y, batch_size=BATCH, epochs=1, verbose=0, shuffle=False,
                  callbacks=[TemperatureCallback(final_temperature=256.0), record])
        temperatures.append(record.values)
    expected = [256.0 ** (t / 8) for t in range(8)]
    np.testing.assert_allclose(temperatures[0], expected, rtol=1e-5)
    np.testing.assert_allclose(temperatures[1], expected, rtol=1e-5)
    assert temperatures[1][4] == pytest.approx(16.0, rel=1e-5)


def test_a_training_call_writes_no_state():
    for layer in (CSDense(4, mask_init=0.3, mask_penalty=1e-3, mask_granularity="unit"),
                  CSDense(4, mask_init=0.3, mask_penalty=1e-3)):
        layer.build((None, 3))
        layer.temperature_rate.assign(2.0)  # a rate set, as during a round
        before = {v.path: np.array(v.numpy()) for v in layer.weights}
        attributes = set(vars(layer))
        x = np.ones((2, 3), "float32")
        first = layer(x, training=True)
        second = layer(x, training=True)
        np.testing.assert_array_equal(first, second)
        assert {v.path: np.array(v.numpy()) for v in layer.weights}.keys() == before.keys()
        for variable in layer.weights:
            np.testing.assert_array_equal(variable.numpy(), before[variable.path])
        # Added losses are collected per call (Keras's add_loss does the same); no other
        # attribute appears.
        assert {a for a in vars(layer) if "losses" not in a} == {
            a for a in attributes if "losses" not in a}
