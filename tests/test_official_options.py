"""The official CS code's semantics as options: each one's mechanics."""

import h5py
import keras
import numpy as np
import pytest

from keras_lottery import data, optimizers, search
from keras_lottery.layers import CSDense, masked_layers
from keras_lottery.methods import cs_mask_reset
from keras_lottery.search.config import ConfigError, SearchConfig


def _variables():
    w = keras.Variable(np.linspace(-1, 1, 12, dtype="float32").reshape(3, 4), name="kernel")
    s = keras.Variable(np.full((3, 4), 0.5, "float32"), name="mask_logits")
    return w, s


@pytest.mark.parametrize("coupled, plain", [
    (lambda: optimizers.CoupledSGD(0.1, momentum=0.9, nesterov=True, coupled_weight_decay=0.01),
     lambda: optimizers.FusedSGD(0.1, momentum=0.9, nesterov=True)),
    (lambda: optimizers.CoupledAdam(1e-2, coupled_weight_decay=0.01),
     lambda: optimizers.FusedAdam(1e-2)),
])
def test_coupled_weight_decay_is_l2_in_the_gradient_through_momentum(coupled, plain):
    """Three steps with coupled decay equal three steps of the plain optimizer on the gradient
    plus `wd * w` (so the decay passes through momentum); `s` is never decayed."""
    rng = np.random.default_rng(0)
    gradients = [rng.normal(size=(3, 4)).astype("float32") for _ in range(3)]
    (w1, s1), (w2, s2) = _variables(), _variables()
    with_decay, reference = coupled(), plain()
    for g in gradients:
        with_decay.apply([g, g], [w1, s1])
        reference.apply([g + 0.01 * w2.numpy(), g], [w2, s2])
    np.testing.assert_allclose(w1.numpy(), w2.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(s1.numpy(), s2.numpy())
    # ... and it is much stronger than Keras's decoupled decay of the same value.
    w3, s3 = _variables()
    decoupled = plain()
    decoupled.weight_decay = 0.01
    for g in gradients:
        decoupled.apply([g, g], [w3, s3])
    assert not np.allclose(w1.numpy(), w3.numpy(), atol=1e-4)


def test_the_search_builds_the_coupled_optimizer():
    from keras_lottery.search import model_setup as training

    config = SearchConfig(weight_decay_mode="coupled", weight_decay=1e-4)
    optimizer = training.make_optimizer(config)
    assert isinstance(optimizer, optimizers.CoupledSGD) and optimizer.weight_decay is None
    assert optimizer.coupled_weight_decay == 1e-4
    adam = training.make_optimizer(SearchConfig(weight_decay_mode="coupled", optimizer="adam"))
    assert isinstance(adam, optimizers.CoupledAdam)
    restored = optimizers.CoupledSGD.from_config(optimizer.get_config())
    assert restored.coupled_weight_decay == 1e-4
    with pytest.raises(ConfigError, match="--weight_decay_mode='l2' is invalid"):
        SearchConfig(weight_decay_mode="l2").validate()


def test_official_reset_ignores_beta_T():
    model = keras.Sequential([keras.Input((2,)), CSDense(2, mask_init=0.05)])
    layer = model.layers[0]
    logits = np.array([[0.2, -0.3], [0.01, 1e-3]], "float32")
    for official, expected in ((False, np.minimum(100 * logits, 0.05)),
                               (True, np.minimum(logits, 0.05))):
        layer.mask_logits.assign(logits)
        layer.temperature.assign(100.0)
        cs_mask_reset(layer, 1.0, official=official)
        np.testing.assert_allclose(layer.mask_logits.numpy(), expected, rtol=1e-6)
        assert float(layer.temperature.numpy()) == 1.0


def test_unit_input_scaling_and_no_validation_split(idx_dir):
    standardized = data.load("fashion_mnist", idx_dir, validation_examples=200)
    unit = data.load("fashion_mnist", idx_dir, validation_examples=0, scaling="unit")
    assert len(unit.x_val) == 0 and len(unit.x_train) == 1200
    assert unit.x_train.min() >= 0 and unit.x_train.max() == 1.0
    assert unit.x_test.max() <= 1.0
    assert abs(float(standardized.x_train.mean())) < 1e-3


def _iterations(path):
    """The optimizer's step count stored in a `.weights.h5` file."""
    with h5py.File(path) as weights:
        return int(np.asarray(weights["optimizer"]["vars"]["0"]))


@pytest.mark.parametrize("keep", [False, True])
def test_keep_optimizer_state_across_rounds(idx_dir, tmp_path, keep):
    """The model saved after round 2 holds the optimizer's step count: one round's steps when
    every round starts fresh, both rounds' when the state is kept. Training on all 1,200 images
    (--validation_examples=0) with inputs in [0, 1] works end to end."""
    from conftest import tiny_config

    config = tiny_config(idx_dir, tmp_path / "run", rounds=2, validation_examples=0,
                         input_scaling="unit", keep_optimizer_state=keep, batch_size=100,
                         mask_init=0.05, mask_penalty=1e-8)
    results = search.run(config)
    assert len(results["rounds"]) == 2
    steps = _iterations(tmp_path / "run" / "state" / "after_round_2.weights.h5")
    assert steps == (24 if keep else 0)  # 12 steps a round; a fresh round starts at 0


class _TemperatureTrace(keras.callbacks.Callback):
    """The `beta` each epoch trains with, and the `beta` after the round."""

    def __init__(self):
        super().__init__()
        self.during, self.after = [], None

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.during.append(float(self.model.layers[0].temperature.numpy()))

    def on_train_end(self, logs=None):
        self.after = float(self.model.layers[0].temperature.numpy())


@pytest.mark.parametrize("official, exponents", [
    (True, [0, 1 / 3, 2 / 3, 1]),    # e / (E - 1): the last epoch trains at beta_T
    (False, [0, 1 / 4, 2 / 4, 3 / 4]),  # the paper's t / T, per epoch
])
def test_per_epoch_temperature_exponents(official, exponents):
    from keras_lottery.callbacks import TemperatureCallback

    model = keras.Sequential([keras.Input((3,)), CSDense(2, mask_init=0.1)])
    model.compile(optimizer="sgd", loss="mse")
    trace = _TemperatureTrace()
    model.fit(np.ones((8, 3), "float32"), np.zeros((8, 2), "float32"), batch_size=4, epochs=4,
              verbose=0, callbacks=[TemperatureCallback(200.0, per_epoch=True, official=official),
                                    trace])
    np.testing.assert_allclose(trace.during, [200.0 ** e for e in exponents], rtol=1e-5)
    assert trace.after == pytest.approx(200.0)  # beta_T for the round-end reset either way
    with pytest.raises(ValueError, match="per_epoch=True"):
        TemperatureCallback(200.0, official=True)


def test_the_search_passes_the_official_temperature_to_cs():
    from keras_lottery import methods

    method = methods.from_config(SearchConfig(official_temperature=True, final_temperature=50.0))
    callback = method.round_callbacks()[0]
    assert callback.official and callback.per_epoch and callback.final_temperature == 50.0


def _reference_scaled_step(x, w, s, bias, beta, lam, scale):
    """`x @ (c * w * sigmoid(beta*s)) + b` and `lambda * ||c * sigmoid(beta*s)||_1` by autodiff."""
    import tensorflow as tf

    w, s = tf.Variable(w), tf.Variable(s)
    with tf.GradientTape() as tape:
        mask = scale * tf.sigmoid(beta * s)
        outputs = x @ (w * mask) + bias
        penalty = lam * tf.reduce_sum(mask)
        objective = tf.reduce_sum(outputs ** 2) + penalty
    return outputs.numpy(), penalty.numpy(), [g.numpy() for g in tape.gradient(objective, [w, s])]


@pytest.mark.parametrize("mask_init", [0.0, -0.05])
def test_mask_scaling_scales_the_mask_the_penalty_and_both_gradients(mask_init):
    """With `mask_scale = 1/sigmoid(s0)` a training step (native kernel on CPU) equals the
    official layer's formula: output, penalty and the gradients of `w` and `s`."""
    import tensorflow as tf

    from keras_lottery.layers import official_mask_scale

    scale = official_mask_scale(mask_init)
    assert scale == pytest.approx(1 / (1 / (1 + np.exp(-mask_init))))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5, 6)).astype("float32")
    layer = CSDense(4, mask_init=mask_init, mask_penalty=1e-2, mask_scale=scale)
    layer.build((None, 6))
    layer.mask_logits.assign(rng.normal(scale=0.1, size=(6, 4)).astype("float32"))
    layer.bias.assign(rng.normal(size=4).astype("float32"))
    layer.temperature.assign(3.0)
    with tf.GradientTape() as tape:
        outputs = layer(x, training=True)
        objective = tf.reduce_sum(outputs ** 2) + tf.add_n(layer.losses)
    gradients = tape.gradient(objective, [layer.unmasked_kernel, layer.mask_logits])
    expected, penalty, expected_gradients = _reference_scaled_step(
        x, layer.unmasked_kernel.numpy(), layer.mask_logits.numpy(), layer.bias.numpy(),
        3.0, 1e-2, scale)
    np.testing.assert_allclose(outputs.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(layer.losses[0].numpy(), penalty, rtol=1e-6)
    for got, want in zip(gradients, expected_gradients):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-6)
    assert layer.mask_penalty_value() == pytest.approx(float(penalty), rel=1e-5)


def test_mask_scaling_starts_a_trained_model_at_its_own_outputs():
    """`sparsify(..., mask_scaling=True)` at s0 = 0 keeps a model's outputs at step 0 (without
    it every kernel is halved); the binary ticket carries the scale into `strip`."""
    from keras_lottery import tickets
    from keras_lottery.tickets import convert

    rng = np.random.default_rng(2)
    plain = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"),
                              keras.layers.Dense(3)])
    x = rng.normal(size=(7, 6)).astype("float32")
    scaled = convert.sparsify(plain, mask_init=0.0, mask_scaling=True)
    np.testing.assert_allclose(scaled(x), plain(x), rtol=1e-5, atol=1e-6)
    halved = convert.sparsify(plain, mask_init=0.0)
    assert not np.allclose(halved(x), plain(x), atol=1e-2)
    # A ticket: fixed masks keep the scale (config round trip), and strip folds it in.
    masks = {layer.name: rng.random(layer.mask_logits.shape) < 0.5
             for layer in masked_layers(scaled)}
    ticket = tickets.build_ticket(scaled, masks)
    assert [layer.mask_scale for layer in masked_layers(ticket)] == [2.0, 2.0]
    restored = keras.Sequential.from_config(ticket.get_config())
    assert [layer.mask_scale for layer in masked_layers(restored)] == [2.0, 2.0]
    stripped = convert.strip(ticket)
    np.testing.assert_allclose(stripped(x), ticket(x), rtol=1e-5, atol=1e-6)
    first = masked_layers(ticket)[0]
    np.testing.assert_allclose(stripped.layers[0].kernel.numpy(),
                               2.0 * first.unmasked_kernel.numpy() * masks[first.name])
    with pytest.raises(ValueError, match="mask_scaling is CS's"):
        convert.sparsify(plain, method="imp", mask_scaling=True)


def test_the_search_builds_scaled_layers():
    from keras_lottery.search import model_setup as training

    config = SearchConfig(mask_scaling=True, mask_init=-0.05)
    model = training.build_model(config, (28, 28, 1), 10)
    scales = [layer.mask_scale for layer in tickets_layers(model)]
    assert scales == [pytest.approx(1 + np.exp(0.05))] * 3
    plain = training.build_model(SearchConfig(), (28, 28, 1), 10)
    assert {layer.mask_scale for layer in tickets_layers(plain)} == {1.0}
    with pytest.raises(ConfigError, match="--mask_scaling=True is invalid"):
        SearchConfig(method="imp", mask_scaling=True).validate()
    with pytest.raises(ValueError, match="mask_scale must be a finite number > 0"):
        CSDense(3, mask_scale=0.0)


def tickets_layers(model):
    from keras_lottery.layers import masked_layers

    return masked_layers(model)
