"""IMP, ISS and the supermask setting on the shared masked layers."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lottery import methods, models, tickets
from keras_lottery.callbacks import RoundManager
from keras_lottery.layers import REMOVED_LOGIT, CSConv2D, CSDense, masked_layers
from keras_lottery.optimizers import MaskOptimizer
from keras_lottery.tickets import snapshots as weights_lib


def _imp_layers(seed=0):
    rng = np.random.RandomState(seed)
    conv = CSConv2D(4, 3, mask_rule="fixed", mask_init=1.0, name="conv")
    conv.build((None, 8, 8, 2))
    dense = CSDense(5, mask_rule="fixed", mask_init=1.0, name="dense")
    dense.build((None, 30))
    for layer in (conv, dense):
        layer.unmasked_kernel.assign(rng.randn(*layer.unmasked_kernel.shape).astype("float32"))
    return [conv, dense]


def _check_survivors_are_largest(layer, before_mask):
    weights = np.abs(layer.unmasked_kernel.numpy())
    after = layer.ticket_mask()
    pruned_now = before_mask & ~after
    if pruned_now.any() and after.any():
        assert weights[after].min() >= weights[pruned_now].max()


def test_imp_layerwise_prunes_exact_fraction_of_survivors_per_layer():
    layers = _imp_layers()
    method = methods.IterativeMagnitudePruning(0.2, "layerwise", layer_fractions={"conv": 0.15})
    for _ in range(3):
        before = {layer.name: layer.ticket_mask() for layer in layers}
        method.round_end(layers)
        for layer in layers:
            rate = 0.15 if layer.name == "conv" else 0.2
            kept_before = before[layer.name].sum()
            kept_after = layer.ticket_mask().sum()
            assert kept_before - kept_after == round(rate * kept_before)
            # Pruned weights stay pruned; survivors are the largest |w| of the survivors.
            assert not (layer.ticket_mask() & ~before[layer.name]).any()
            _check_survivors_are_largest(layer, before[layer.name])


def test_imp_global_ranks_all_layers_together():
    layers = _imp_layers(1)
    layers[1].unmasked_kernel.assign(layers[1].unmasked_kernel.numpy() * 0.1)  # small layer
    method = methods.IterativeMagnitudePruning(0.2, "global")
    for _ in range(2):
        before = {layer.name: layer.ticket_mask() for layer in layers}
        total_before = sum(mask.sum() for mask in before.values())
        method.round_end(layers)
        total_after = sum(layer.ticket_mask().sum() for layer in layers)
        assert total_before - total_after == round(0.2 * total_before)
        kept = np.concatenate([np.abs(l.unmasked_kernel.numpy())[l.ticket_mask()] for l in layers])
        pruned = np.concatenate([np.abs(l.unmasked_kernel.numpy())[before[l.name] & ~l.ticket_mask()]
                                 for l in layers])
        assert kept.min() >= pruned.max()
    # One global threshold prunes the small-magnitude layer much harder.
    assert layers[1].remaining_fraction() < layers[0].remaining_fraction() - 0.3


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, float("nan")])
def test_imp_rejects_bad_fractions(fraction):
    with pytest.raises(ValueError, match="fraction"):
        methods.IterativeMagnitudePruning(fraction)


def test_imp_round_rewinds_exactly_and_prunes_trained_weights():
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((6,)),
        CSDense(16, activation="relu", mask_rule="fixed", mask_init=1.0, name="a"),
        keras.layers.BatchNormalization(name="bn"),
        CSDense(3, mask_rule="fixed", mask_init=1.0, name="b"),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    manager = RoundManager(rewind_epoch=1, ticket_epoch=1,
                           method=methods.IterativeMagnitudePruning(0.5))
    trained = {}

    class KeepTrained(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            trained.update({l.name: l.unmasked_kernel.numpy() for l in masked_layers(model)})

    rng = np.random.RandomState(0)
    x, y = rng.randn(96, 6).astype("float32"), rng.randint(0, 3, 96)
    model.fit(x, y, batch_size=16, epochs=3, verbose=0, callbacks=[KeepTrained(), manager])
    # Weights (BN statistics included) are back at w_1 exactly.
    after = weights_lib.snapshot(model)
    for index, (path, value) in manager.rewind_weights.items():
        np.testing.assert_array_equal(after[index][1], value, err_msg=path)
    # The ticket is the mask after pruning, chosen by the trained magnitudes w_T.
    for layer in masked_layers(model):
        mask = manager.tickets[0][layer.name]
        np.testing.assert_array_equal(mask, layer.ticket_mask())
        assert mask.sum() == round(0.5 * mask.size)
        magnitudes = np.abs(trained[layer.name])
        assert magnitudes[mask].min() >= magnitudes[~mask].max()
    assert int(model.optimizer.iterations.numpy()) == 0


def _stochastic_dense(s_values):
    layer = CSDense(s_values.shape[1], mask_rule="stochastic", use_bias=False,
                    kernel_initializer="ones", mask_penalty=0.0)
    layer.build((None, s_values.shape[0]))
    layer.mask_logits.assign(s_values)
    return layer


def test_stochastic_masks_have_mean_sigmoid_s_and_binary_inference():
    s = np.array([[-2.0, -0.5, 0.0, 0.7, 3.0]], "float32")
    layer = _stochastic_dense(s)
    samples = np.stack([np.asarray(layer.masked_kernel(training=True)) for _ in range(4000)])
    assert set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_allclose(samples.mean(axis=0), 1 / (1 + np.exp(-s)), atol=0.03)
    np.testing.assert_array_equal(np.asarray(layer.kernel), (s > 0).astype("float32"))


@pytest.mark.tensorflow_only  # tf.GradientTape
def test_stochastic_straight_through_gradient_reaches_s():
    s = np.array([[-1.0, 0.2, 2.0]], "float32")
    layer = _stochastic_dense(s)
    x = tf.constant([[3.0]])
    with tf.GradientTape() as tape:
        y = tf.reduce_sum(layer(x, training=True))
    grad = tape.gradient(y, layer.mask_logits).numpy()
    sig = 1 / (1 + np.exp(-s))
    # d/ds of x * w * m with dm/ds = sigmoid'(s) (w = 1).
    np.testing.assert_allclose(grad, 3.0 * sig * (1 - sig), rtol=1e-5)


def test_iss_removal_is_permanent_and_nan_free():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((5,)),
        CSDense(12, activation="relu", mask_rule="stochastic", mask_init=1.0,
                mask_penalty=1e-3, name="a"),
        CSDense(2, mask_rule="stochastic", mask_init=1.0, mask_penalty=1e-3, name="b"),
    ])
    model.compile(optimizer=MaskOptimizer(keras.optimizers.Adam(1e-2), keras.optimizers.SGD(20.0)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    manager = RoundManager(rewind_epoch=0, method=methods.IterativeStochasticSparsification())
    rng = np.random.RandomState(0)
    x, y = rng.randn(64, 5).astype("float32"), rng.randint(0, 2, 64)
    removed_so_far = {}
    for _ in range(3):
        model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[manager])
        for layer in masked_layers(model):
            s = layer.mask_logits.numpy()
            assert np.all(np.isfinite(s))
            removed = s == REMOVED_LOGIT
            previously = removed_so_far.get(layer.name, np.zeros_like(removed))
            assert np.all(removed[previously]), "a removed weight came back"
            removed_so_far[layer.name] = removed
            # Removed weights are never sampled: their mask is exactly 0.
            samples = np.asarray(layer.masked_kernel(training=True)) / np.asarray(layer.unmasked_kernel)
            assert np.all(samples[removed] == 0)
    assert sum(r.sum() for r in removed_so_far.values()) > 0
    assert np.isfinite(model.evaluate(x, y, verbose=0))


def test_supermask_moves_the_mask_not_the_weights():
    keras.utils.set_random_seed(0)
    model = models.build("lenet300_100", (6, 6, 1), 3, mask_init=0.5, mask_penalty=1e-4)
    weights_lib.freeze_weights(model)
    before = {v.path: v.numpy() for v in model.weights}
    model.compile(optimizer=keras.optimizers.Adam(0.01),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.RandomState(0)
    model.fit(rng.randn(64, 6, 6, 1), rng.randint(0, 3, 64), epochs=2, verbose=0)
    for variable in model.weights:
        if variable.name == "mask_logits":
            assert not np.allclose(variable.numpy(), before[variable.path]), variable.path
        else:
            np.testing.assert_array_equal(variable.numpy(), before[variable.path])


def test_weight_decay_never_touches_s():
    from keras_lottery.search.config import SearchConfig
    from keras_lottery.search.model_setup import make_optimizer

    # One optimizer for w and s, and MaskOptimizer with its own optimizer for s.
    for settings in ({}, {"mask_optimizer": "sgd", "mask_learning_rate": 5.0}):
        config = SearchConfig(optimizer="sgd", learning_rate=0.1, momentum=0.0,
                              weight_decay=0.5, **settings)
        optimizer = make_optimizer(config)
        w = keras.Variable(np.ones(3, "float32"), name="kernel")
        s = keras.Variable(np.ones(3, "float32"), name="mask_logits")
        optimizer.apply_gradients([(np.zeros(3, "float32"), w), (np.zeros(3, "float32"), s)])
        np.testing.assert_array_equal(s.numpy(), np.ones(3))  # no gradient, no decay
        assert np.all(w.numpy() < 1.0)  # decayed


@pytest.mark.tensorflow_only  # tf.GradientTape
def test_mask_optimizer_uses_its_own_learning_rate_and_round_trips(tmp_path):
    layer = CSDense(2, mask_init=0.1)
    model = keras.Sequential([keras.Input((3,)), layer])
    model.compile(optimizer=MaskOptimizer(keras.optimizers.SGD(0.0), keras.optimizers.SGD(1.0)),
                  loss="mse")
    w_before, s_before = layer.unmasked_kernel.numpy(), layer.mask_logits.numpy()
    x, y = np.ones((4, 3), "float32"), np.ones((4, 2), "float32")
    with tf.GradientTape() as tape:
        loss = keras.losses.mean_squared_error(y, model(x, training=True))
        loss = tf.reduce_mean(loss)
    grad = tape.gradient(loss, layer.mask_logits).numpy()
    model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    np.testing.assert_array_equal(layer.unmasked_kernel.numpy(), w_before)
    np.testing.assert_allclose(layer.mask_logits.numpy(), s_before - grad, rtol=1e-5, atol=1e-7)
    assert int(model.optimizer.iterations.numpy()) == 1
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded.optimizer, MaskOptimizer)
    assert float(loaded.optimizer.mask_optimizer.learning_rate.numpy()) == 1.0


def test_unmasked_layers_are_plain_keras_layers():
    model = models.build("conv2", (12, 12, 1), 4, unmasked=["output", "conv1_1"])
    names = {layer.name for layer in masked_layers(model)}
    assert names == {"conv1_2", "fc1", "fc2"}
    assert type(model.get_layer("output")) is keras.layers.Dense
    assert type(model.get_layer("conv1_1")) is keras.layers.Conv2D
    with pytest.raises(ValueError, match="not in model"):
        models.build("conv2", (12, 12, 1), 4, unmasked=["fc9"])


def test_conv6_has_the_papers_weight_count():
    model = models.build("conv6", (32, 32, 3), 10)
    masks = tickets.extract_masks(model)
    assert sum(mask.size for mask in masks.values()) == 2_261_184


@pytest.mark.tensorflow_only  # tf.function steps
@pytest.mark.parametrize("nesterov", [False, True])
def test_fused_sgd_matches_keras_sgd_step_for_step(nesterov):
    import tensorflow as tf

    from keras_lottery.optimizers import FusedSGD

    results = []
    for optimizer_class in (keras.optimizers.SGD, FusedSGD):
        variable = keras.Variable(np.arange(6, dtype="float32").reshape(2, 3))
        optimizer = optimizer_class(0.1, momentum=0.9, nesterov=nesterov, weight_decay=0.01)

        @tf.function
        def step(gradient):
            optimizer.apply([gradient], [variable])  # noqa: B023 (traced in this iteration)

        for i in range(5):
            step(tf.constant(np.full((2, 3), (-1.0) ** i * (i + 1), "float32")))
        results.append(variable.numpy())
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6)
    assert not np.allclose(results[0], np.arange(6).reshape(2, 3))  # it did train
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(FusedSGD(0.1, momentum=0.5)))
    assert isinstance(restored, FusedSGD) and restored.momentum == 0.5


@pytest.mark.tensorflow_only  # tf.function steps
@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_fused_adam_matches_keras_adam_step_for_step(weight_decay):
    import tensorflow as tf

    from keras_lottery.optimizers import FusedAdam

    results = []
    for optimizer_class in (keras.optimizers.Adam, FusedAdam):
        variable = keras.Variable(np.arange(6, dtype="float32").reshape(2, 3))
        optimizer = optimizer_class(0.01, weight_decay=weight_decay)

        @tf.function
        def step(gradient):
            optimizer.apply([gradient], [variable])  # noqa: B023 (traced in this iteration)

        for i in range(7):
            step(tf.constant(np.linspace(-1, 1, 6, dtype="float32").reshape(2, 3) * (i - 3)))
        results.append(variable.numpy())
    # The same update up to float rounding (TensorFlow's kernel orders the arithmetic its way).
    np.testing.assert_allclose(results[1], results[0], rtol=1e-6, atol=1e-6)
    assert not np.allclose(results[0], np.arange(6).reshape(2, 3))  # it did train
    restored = keras.optimizers.deserialize(keras.optimizers.serialize(FusedAdam(0.1)))
    assert isinstance(restored, FusedAdam)


def _logit_model(values):
    import keras

    from keras_lottery.layers import CSDense

    model = keras.Sequential([keras.Input((len(values) // 2,)), CSDense(2, mask_init=0.0)])
    layer = model.layers[0]
    layer.mask_logits.assign(np.asarray(values, "float32").reshape(layer.mask_logits.shape))
    return model, layer


def test_target_controller_keeps_removed_weights_removed_and_breaks_ties():
    from keras_lottery.callbacks import TargetRemaining
    from keras_lottery.layers import REMOVED_LOGIT

    # Half the weights removed for good (ISS/IMP); the target asks for more than are alive.
    model, layer = _logit_model([REMOVED_LOGIT] * 4 + [0.5, 0.2, 0.1, -0.3])
    controller = TargetRemaining(0.75)
    controller.set_model(model)
    controller.project()
    logits = layer.mask_logits.numpy().ravel()
    assert (logits[:4] == REMOVED_LOGIT).all()  # not put back at 0 or above
    # Tied logits at the threshold: ranked by |w| (larger kept), then by position.
    model, layer = _logit_model([0.3] * 8)
    layer.unmasked_kernel.assign(np.reshape([0.1, -0.8, 0.3, 0.8, 0.5, 0.2, -0.9, 0.5], (4, 2)))
    controller = TargetRemaining(0.5)
    controller.set_model(model)
    controller.project()
    assert layer.ticket_mask().ravel().tolist() == [False, True, False, True, True, False,
                                                      True, False]
    # The usual case lands exactly.
    model, layer = _logit_model([0.9, 0.1, -0.2, 0.4, 0.05, -0.7, 0.3, 0.2])
    controller = TargetRemaining(0.25)
    controller.set_model(model)
    controller.project()
    assert layer.ticket_mask().mean() == 0.25
    assert layer.ticket_mask().ravel().tolist() == [True, False, False, True, False, False,
                                                      False, False]


def test_cs_reset_keeps_removed_logits_finite_under_a_huge_beta():
    from keras_lottery.layers import REMOVED_LOGIT
    from keras_lottery.methods import cs_mask_reset

    _, layer = _logit_model([REMOVED_LOGIT, -2.0, 0.5, -1e-3])
    for _ in range(10):  # beta_T = 1e6 every round: beta_T * s_T would reach -inf by round 7
        layer.temperature.assign(1e6)
        cs_mask_reset(layer, 1.0)
    logits = layer.mask_logits.numpy().ravel()
    assert np.isfinite(logits).all() and logits.min() == REMOVED_LOGIT
    assert logits[2] == 0.0  # min(beta_T s_T, s0) with s0 = 0


def test_imp_rates_follow_the_layer_kind():
    import keras

    from keras_lottery.methods import IterativeMagnitudePruning
    from keras_lottery.tickets import convert

    plain = keras.Sequential([keras.Input((16, 3)), keras.layers.Conv1D(4, 3, name="c1"),
                              keras.layers.Flatten(), keras.layers.Dense(8, name="d"),
                              keras.layers.Dense(2, name="out")])
    model = convert.sparsify(plain, method="imp")
    method = IterativeMagnitudePruning(0.2, conv_fraction=0.5, dense_fraction=0.25,
                                       output_fraction=0.1)
    from keras_lottery.layers import masked_layers

    method.round_end(masked_layers(model))
    kept = {l.name: l.ticket_mask().mean() for l in masked_layers(model)}
    assert kept == pytest.approx({"c1": 0.5, "d": 0.75, "out": 0.9}, abs=0.03)  # 16 weights in out


def test_target_remaining_lands_exactly_on_its_target_when_logits_tie():
    """Logits that take few values (as after saturation) tie at the threshold in numbers:
    keeping the whole tie missed a 50% target (74.5% kept here);
    ranking the tie by |w| then position lands on it exactly."""
    from keras_lottery.callbacks import TargetRemaining

    rng = np.random.RandomState(0)
    logits = rng.choice([-0.4, 0.25, 0.25, 0.7], size=1000).astype("float32")
    model = keras.Sequential([keras.Input((100,)), CSDense(10, mask_init=0.0)])
    layer = model.layers[0]
    layer.mask_logits.assign(logits.reshape(100, 10))
    above = float(np.mean(logits > 0.25))  # what the tie at 0.25 left on either side
    assert above < 0.5 < above + float(np.mean(logits == 0.25))
    controller = TargetRemaining(0.5)
    controller.set_model(model)
    controller.project()
    mask = layer.ticket_mask().ravel()
    assert mask.sum() == 500
    # Every logit above the tie is kept; inside the tie, the largest |w| are.
    assert mask[logits > 0.25].all() and not mask[logits < 0.25].any()
    tied = logits == 0.25
    kept_w = np.abs(layer.unmasked_kernel.numpy().ravel())[tied & mask]
    dropped_w = np.abs(layer.unmasked_kernel.numpy().ravel())[tied & ~mask]
    assert kept_w.min() >= dropped_w.max()


def test_ss_supermask_evaluated_with_sampled_masks_beside_the_threshold(idx_dir, tmp_path):
    """`--ss_eval=sample` records the mean and spread of the test accuracy over masks drawn
    from Bernoulli(sigmoid(s)) (Zhou et al.'s SS numbers) beside the thresholded ticket."""
    from conftest import tiny_config

    from keras_lottery import search

    config = tiny_config(idx_dir, tmp_path / "run", method="iss", supermask=True, mask_init=0.0,
                         mask_optimizer="sgd", mask_learning_rate=20.0, epochs=2,
                         ss_eval="sample", ss_eval_samples=4)
    record = search.run(config)["rounds"][0]
    assert record["sampled_masks"] == 4 and record["sampled_accuracy_std"] > 0
    assert 0.1 < record["sampled_accuracy"] <= 1.0
    assert record["ticket_accuracy"] is not None  # the thresholded mask, as before
    # Sampling draws different masks from the thresholded one: the numbers differ.
    assert record["sampled_accuracy"] != record["ticket_accuracy"]
    plain = search.run(tiny_config(idx_dir, tmp_path / "plain", method="iss", supermask=True,
                                   mask_init=0.0, mask_optimizer="sgd",
                                   mask_learning_rate=20.0, epochs=2))["rounds"][0]
    assert "sampled_accuracy" not in plain
    assert plain["ticket_accuracy"] == record["ticket_accuracy"]
