"""`--penalty_cost=macs`: each layer's `lambda` priced by its multiply-accumulates
(`keras_lottery.layers.costs`), and the positions `size_report` counts MACs with."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_lottery
from keras_lottery import models, tickets
from keras_lottery.layers import costs, masked_layers_by_key
from keras_lottery.search import SearchConfig, model_setup
from keras_lottery.search.config import ConfigError, check_settings
from keras_lottery.tickets import deployed_penalty


def _penalty_at_full_density(model):
    return sum(layer.mask_penalty_value() for layer in masked_layers_by_key(model).values())


def _conv4(cost, **kwargs):
    model = models.build("conv4", (28, 28, 1), 10, mask_granularity="unit", mask_init=9.0,
                         mask_penalty=1e-7, **kwargs)
    costs.weigh_penalty(model, cost)
    return model


def test_macs_price_each_layer_by_its_positions_and_keep_the_total_at_full_density():
    by_weights, by_macs = _conv4("weights"), _conv4("macs")
    layers = masked_layers_by_key(by_macs)
    positions = {key: costs.kernel_positions(layer) for key, layer in layers.items()}
    assert positions == {"conv1_1": 784, "conv1_2": 784, "conv2_1": 196, "conv2_2": 196,
                         "fc1": 1, "fc2": 1, "output": 1}
    lambdas = {key: float(layer.penalty_weight.numpy()) for key, layer in layers.items()}
    assert lambdas["conv1_2"] / lambdas["fc1"] == pytest.approx(784, rel=1e-5)
    assert lambdas["conv2_1"] / lambdas["fc1"] == pytest.approx(196, rel=1e-5)
    # The config holds lambda_l, so copies and saved models keep it.
    assert layers["conv1_2"].get_config()["mask_penalty"] == pytest.approx(lambdas["conv1_2"])
    # sum_l lambda_l * n_l == lambda * W: the flagfile's lambda keeps its scale.
    assert _penalty_at_full_density(by_macs) == pytest.approx(
        _penalty_at_full_density(by_weights), rel=1e-5)
    assert _penalty_at_full_density(by_weights) == pytest.approx(
        1e-7 * sum(int(np.prod(l.unmasked_kernel.shape)) for l in layers.values()), rel=5e-4)  # sigmoid(9)


@pytest.mark.tensorflow_only
def test_the_penalty_gradient_on_a_filter_grows_by_its_positions():
    def gradient_ratio(cost):  # |d penalty / d s| of a conv filter over that of a dense unit
        keras.utils.set_random_seed(0)
        inputs = keras.Input((12, 12, 1))
        x = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
        x = keras.layers.Dense(5, name="hidden")(keras.layers.Flatten()(x))
        plain = keras.Model(inputs, keras.layers.Dense(3, name="out")(x))
        model = keras_lottery.sparsify(plain, mask_granularity="unit", mask_init=0.0,
                                       mask_penalty=1e-3, penalty_cost=cost)
        layers = masked_layers_by_key(model)
        variables = [layers["conv"].mask_logits, layers["hidden"].mask_logits]
        with tf.GradientTape() as tape:
            model(np.zeros((1, 12, 12, 1), "float32"), training=True)
            penalty = tf.add_n(model.losses)
        conv, hidden = (np.abs(g.numpy()).mean() for g in tape.gradient(penalty, variables))
        return conv / hidden

    # Per unit: 9 weights at 144 positions against 576 weights at 1 position.
    assert gradient_ratio("weights") == pytest.approx(9 / 576, rel=1e-4)
    assert gradient_ratio("macs") == pytest.approx(9 * 144 / 576, rel=1e-4)


def test_dense_networks_on_vectors_cost_the_same_either_way():
    model = models.build("lenet300_100", (28, 28, 1), 10, mask_penalty=1e-6)
    assert list(costs.weigh_penalty(model, "macs").values()) == pytest.approx([1.0] * 3)
    assert [float(layer.penalty_weight.numpy()) for layer in masked_layers_by_key(
        model).values()] == pytest.approx([1e-6] * 3)


def test_attention_projections_are_read_from_a_call_and_macs_count_them():
    model = models.build("transformer_tiny", (64,), 6, vocabulary_size=500, mask_penalty=1e-7,
                         mask_init=1.0)
    factors = costs.weigh_penalty(model, "macs")
    # Every projection runs at each of the 64 tokens; the output layer once, on the pooled mean.
    assert factors["block0_attention/attention_output"] == pytest.approx(
        64 * factors["output"])
    assert factors["block1_ff2"] == pytest.approx(64 * factors["output"])
    report = tickets.size_report(model)
    projection = [e for e in report["layers"] if e["name"] == "block0_attention/query"][0]
    assert projection["nonzero_macs_per_example"] == 64 * 64 * 64  # tokens x width x width


def test_variable_length_models_are_refused_and_in_place_changes_nothing():
    inputs = keras.Input((None, 8))
    outputs = keras.layers.Dense(4, name="projection")(inputs)
    plain = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(outputs))
    before = [w.numpy().copy() for w in plain.weights]
    with pytest.raises(ValueError, match="'projection'.*variable length.*'weights'"):
        keras_lottery.sparsify(plain, penalty_cost="macs", in_place=True)
    assert type(plain.get_layer("projection")) is keras.layers.Dense
    assert all(np.array_equal(a, b.numpy()) for a, b in zip(before, plain.weights))
    with pytest.raises(ValueError, match="penalty_cost must be one of"):
        keras_lottery.sparsify(plain, penalty_cost="flops")


def test_the_search_weighs_lambda_and_refuses_it_for_a_method_without_a_penalty():
    config = SearchConfig(model="conv2", mask_granularity="unit", penalty_cost="macs")
    check_settings(config)
    model = model_setup.build_model(config, (28, 28, 1), 10)
    recorded = model_setup.current_penalty(model, keras_lottery.methods.get("cs")())
    assert recorded["conv1_1"] > recorded["fc1"] * 100  # lambda_l per layer key, in results.json
    with pytest.raises(ConfigError, match="penalty_cost.*no penalty to weigh"):
        check_settings(SearchConfig(method="imp", penalty_cost="macs"))


def _per_group(layer):
    """What the penalty charges one group of `layer` at m = 1: `lambda_l * g_l`."""
    return float(layer.penalty_weight.numpy()) * layer.group_size


def test_deployed_macs_price_a_unit_with_the_input_rows_shrink_takes_out_with_it():
    model = models.build("conv4", (28, 28, 1), 10, mask_granularity="unit", mask_init=9.0,
                         mask_penalty=1e-7)
    factors = deployed_penalty.weigh_penalty(model, "deployed_macs")
    layers = masked_layers_by_key(model)
    kernels = {key: tuple(layer.unmasked_kernel.shape) for key, layer in layers.items()}
    # a filter of conv1_1 (28x28 'same'): its 3x3x1 kernel, and conv1_2's 3x3 slice of it for
    # each of conv1_2's filters; a unit of fc2: its inputs and its row of the output layer
    saved = {"conv1_1": 784 * 9 * (1 + kernels["conv1_2"][3]),
             "conv2_1": 196 * 9 * (kernels["conv2_1"][2] + kernels["conv2_2"][3]),
             "fc2": kernels["fc2"][0] + kernels["output"][1]}
    for key in ("conv1_1", "conv2_1"):
        assert _per_group(layers[key]) / _per_group(layers["fc2"]) == pytest.approx(
            saved[key] / saved["fc2"], rel=1e-5)
    # own-kernel pricing ("macs") charges conv1_1's filter 9*784 only: 1/65 of what it saves
    assert factors["conv1_1"] / factors["fc2"] > 10 * costs.penalty_factors(
        {k: layers[k] for k in ("conv1_1", "fc2")}, "macs")["conv1_1"]
    # the flagfile's lambda keeps its scale: at full density the total is the paper's
    assert _penalty_at_full_density(model) == pytest.approx(
        _penalty_at_full_density(_conv4("weights")), rel=1e-5)
    with pytest.raises(ValueError, match="deployed_penalty"):
        costs.weigh_penalty(model, "deployed_macs")


def test_deployed_macs_price_a_depthwise_channel_with_its_expand_unit_and_project_row():
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(12, 1, name="expand")(inputs)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
    x = keras.layers.DepthwiseConv2D(3, padding="same", name="depthwise")(x)
    x = keras.layers.ReLU(6.0)(keras.layers.BatchNormalization()(x))
    x = keras.layers.Conv2D(6, 1, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    plain = keras.Model(inputs, keras.layers.Dense(10, name="output")(x))
    with pytest.warns(UserWarning, match="expand"):  # as in MobileNetV2: BN, then padding
        model = keras_lottery.sparsify(plain, mask_granularity="unit", mask_penalty=1e-6,
                                       penalty_cost="deployed_macs")
    layers = masked_layers_by_key(model)
    assert "depthwise" in layers and "expand" not in layers  # one logit per channel
    # a depthwise channel at 8x8: the expand unit's 4 inputs, its own 3x3, project's row of 6
    channel, project_unit = 64 * (4 + 9 + 6), 64 * 12 + 10
    assert _per_group(layers["depthwise"]) / _per_group(layers["project"]) == pytest.approx(
        channel / project_unit, rel=1e-5)
