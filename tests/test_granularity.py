"""Mask granularity: one logit per weight, per unit (neuron, filter) or per 1x4 input block,
through every method; the penalty counts the weights a group holds."""

import keras
import numpy as np
import pytest
from conftest import tiny_config

from keras_lottery import methods, search
from keras_lottery.callbacks import TargetRemaining
from keras_lottery.layers import CSConv2D, CSDense, CSDepthwiseConv2D, masked_layers


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.mark.parametrize("granularity, shape, group", [
    ("weight", (8, 3), 1), ("unit", (1, 3), 8), ("block", (2, 3), 4)])
def test_dense_groups_share_one_logit_and_the_penalty_counts_their_weights(
        granularity, shape, group):
    layer = CSDense(3, mask_penalty=0.5, mask_granularity=granularity)
    model = keras.Sequential([keras.Input((8,)), layer])
    assert tuple(layer.mask_logits.shape) == shape and layer.group_size == group
    s = np.random.RandomState(1).randn(*shape).astype("float32")
    layer.mask_logits.assign(s)
    layer.temperature.assign(3.0)
    x = np.random.RandomState(0).randn(4, 8).astype("float32")
    soft = sigmoid(3.0 * s)
    expanded = np.repeat(soft, 4, axis=0) if granularity == "block" else np.broadcast_to(
        soft, (8, 3))
    w, b = layer.unmasked_kernel.numpy(), layer.bias.numpy()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), x @ (w * expanded) + b, rtol=1e-5, atol=1e-6)
    model(x, training=True)
    np.testing.assert_allclose(float(model.losses[0]), 0.5 * group * soft.sum(), rtol=1e-5)
    assert layer.mask_penalty_value() == pytest.approx(0.5 * group * soft.sum(), rel=1e-5)
    # The ticket is kernel-shaped; whole groups are kept or removed.
    mask = layer.ticket_mask()
    assert mask.shape == (8, 3)
    assert layer.remaining_fraction() == pytest.approx(mask.mean())
    layer.set_ticket_mask(mask)
    np.testing.assert_array_equal(layer.ticket_mask(), mask)


def test_unit_masks_of_convolutions_remove_whole_filters_and_channels():
    conv = CSConv2D(4, 3, mask_granularity="unit")
    depthwise = CSDepthwiseConv2D(3, depth_multiplier=2, mask_granularity="unit")
    keras.Sequential([keras.Input((6, 6, 3)), conv, depthwise])
    assert tuple(conv.mask_logits.shape) == (1, 1, 1, 4) and conv.group_size == 27
    assert tuple(depthwise.mask_logits.shape) == (1, 1, 4, 2) and depthwise.group_size == 9
    conv.mask_logits.assign(np.reshape([1.0, -1.0, 1.0, -1.0], (1, 1, 1, 4)))
    mask = conv.ticket_mask()
    assert mask[..., 0].all() and not mask[..., 1].any()
    with pytest.raises(ValueError, match="keeps part of a unit group"):
        conv.set_ticket_mask(np.ones((3, 3, 3, 4), bool) & (np.arange(4) < 3)
                             & (np.arange(3)[:, None, None, None] > 0))


def test_block_granularity_is_for_dense_layers_with_inputs_in_fours():
    with pytest.raises(ValueError, match="block.*is for Dense layers; CSConv2D takes"):
        keras.Sequential([keras.Input((6, 6, 1)), CSConv2D(2, 3, mask_granularity="block")])
    with pytest.raises(ValueError, match="divisible by 4, got 30"):
        keras.Sequential([keras.Input((30,)), CSDense(2, mask_granularity="block")])
    with pytest.raises(ValueError, match="Unknown mask_granularity 'row'"):
        CSDense(2, mask_granularity="row")


def test_config_round_trip_and_saving_keep_the_groups(tmp_path):
    model = keras.Sequential([keras.Input((8,)), CSDense(3, mask_granularity="block", name="d")])
    layer = model.layers[0]
    layer.mask_logits.assign(np.random.RandomState(0).randn(2, 3).astype("float32"))
    assert CSDense.from_config(layer.get_config()).mask_granularity == "block"
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.layers[0].mask_logits.numpy(),
                                  layer.mask_logits.numpy())


def _units_model(rule_method, granularity="unit"):
    keras.utils.set_random_seed(0)
    arguments = rule_method.layer_arguments(0.5, 1e-6, mask_granularity=granularity)
    return keras.Sequential([keras.Input((6,)), CSDense(8, name="a", **arguments),
                             CSDense(4, name="b", **arguments)])


def test_imp_prunes_units_by_their_l2_norm_and_cs_resets_each_group():
    model = _units_model(methods.IterativeMagnitudePruning(0.5, "layerwise"))
    first = masked_layers(model)[0]
    first.unmasked_kernel.assign(np.arange(1, 9, dtype="float32")[None, :].repeat(6, axis=0)
                                 * np.where(np.arange(8) % 2, 1.0, -1.0))
    methods.IterativeMagnitudePruning(0.5, "layerwise").round_end(masked_layers(model))
    assert first.ticket_mask()[0].tolist() == [False] * 4 + [True] * 4  # the largest norms
    for scope in ("layerwise", "global"):  # the output layer's units are the classes: all kept
        methods.IterativeMagnitudePruning(0.5, scope).round_end(masked_layers(model))
        assert masked_layers(model)[1].ticket_mask().all(), scope
    cs = _units_model(methods.ContinuousSparsification())
    layer = masked_layers(cs)[0]
    layer.mask_logits.assign(np.linspace(-0.2, 0.2, 8, dtype="float32")[None, :])
    layer.temperature.assign(50.0)
    methods.cs_mask_reset(layer, 1.0)
    np.testing.assert_allclose(layer.mask_logits.numpy()[0],
                               np.minimum(50 * np.linspace(-0.2, 0.2, 8), 0.5), rtol=1e-5)


def test_iss_samples_one_bernoulli_per_unit():
    model = _units_model(methods.IterativeStochasticSparsification())
    layer = masked_layers(model)[0]
    mask = keras.ops.convert_to_numpy(layer.expand_mask(layer._mask_rule.mask(layer, True)))
    assert (mask == mask[:1]).all()  # every input row sees the unit's one sample


def test_target_remaining_keeps_whole_units():
    model = _units_model(methods.ContinuousSparsification())
    for layer in masked_layers(model):
        layer.mask_logits.assign(np.random.RandomState(3).randn(
            *layer.mask_logits.shape).astype("float32"))
    controller = TargetRemaining(0.5)
    controller.set_model(model)
    controller.project()
    kept = sum(int(layer.ticket_mask().sum()) for layer in masked_layers(model))
    # 6*8 + 8*4 = 80 weights; groups of 6 and of 8: the largest set of whole units <= 40.
    assert 40 - 8 < kept <= 40


@pytest.mark.tensorflow_only
def test_a_unit_search_removes_whole_neurons_and_block_on_a_conv_is_one_error(idx_dir, tmp_path):
    config = tiny_config(idx_dir, tmp_path / "unit", mask_granularity="unit", mask_init=0.02,
                         mask_penalty=1e-4, epochs=2, rounds=2, ticket_epochs=1)
    results = search.run(config)
    masks = search.load_run(str(tmp_path / "unit")).masks
    for name, mask in masks.items():
        assert ((mask == mask[:1]).all()), name  # every input of a unit shares its fate
    assert results["rounds"][-1]["remaining"] < 1.0
    bad = tiny_config(idx_dir, tmp_path / "block", mask_granularity="block", model="conv2")
    with pytest.raises(search.ConfigError, match="--model=conv2 cannot be built.*is for Dense"):
        search.run(bad)


def test_a_removed_unit_takes_its_bias_along_in_training_inference_and_strip():
    import keras_lottery

    layer = CSDense(3, mask_granularity="unit", activation="relu")
    model = keras.Sequential([keras.Input((4,)), layer])
    layer.bias.assign([0.5, 0.7, 0.9])
    layer.mask_logits.assign([[5.0, -5.0, 5.0]])
    layer.temperature.assign(100.0)  # saturated: m is 1, 0, 1
    x = np.random.RandomState(0).rand(5, 4).astype("float32")
    for training in (False, True):
        assert np.all(keras.ops.convert_to_numpy(model(x, training=training))[:, 1] == 0.0)  # act(0), not act(b)
    stripped = keras_lottery.strip(model)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(stripped(x)), keras.ops.convert_to_numpy(model(x)), rtol=0, atol=0)
    assert stripped.layers[0].bias.numpy().tolist() == pytest.approx([0.5, 0.0, 0.9])


@pytest.mark.tensorflow_only
def test_a_unit_ticket_of_a_search_is_exported_shrunk_and_as_tflite(idx_dir, tmp_path):
    import json
    import os

    config = tiny_config(idx_dir, tmp_path / "run", mask_granularity="unit", mask_init=0.02,
                         mask_penalty=1e-4, epochs=2, ticket_epochs=1, deployment=True,
                         latency_repeats=3)
    record = search.run(config)["rounds"][0]
    deployment = record["deployment"]
    folder = tmp_path / "run" / "ticket"
    assert (folder / "ticket.tflite").exists() and (folder / "shrunk.keras").exists()
    assert deployment["shrunk"]["parameters"] == deployment["parameters"]["deployed"] < (
        deployment["parameters"]["dense"])
    # Both networks counted both ways: as stored (the shrunk network) and their nonzeros.
    for count in ("parameters", "macs_per_example"):
        values = deployment[count]
        assert set(values) == {"dense", "dense_nonzero", "deployed", "deployed_nonzero"}
        assert values["deployed_nonzero"] <= values["deployed"] < values["dense"]
        assert values["dense_nonzero"] <= values["dense"]
    assert deployment["file_bytes"]["shrunk_keras"] < deployment["file_bytes"]["dense_keras"]
    assert set(deployment["speedup"]) == {"keras", "tflite"}
    assert set(deployment["speedup"]["keras"]) == {"1", "256"}
    with open(tmp_path / "run" / "results.json") as handle:
        assert json.load(handle)["rounds"][0]["deployment"]["shrunk"]["units"] == (
            deployment["shrunk"]["units"])
    assert not any(name.startswith(".") for name in os.listdir(folder))  # no temporary left
