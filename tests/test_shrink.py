"""`shrink`: a ticket without its removed units, a smaller plain Keras model whose outputs equal
the stripped ticket's."""

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import models
from keras_lottery.layers import CSConv2D, CSDense, masked_layers
from keras_lottery.tickets import ShrinkError


def _randomize(model, seed=0, shift=0.3):
    """Saturated unit masks at random (some units gone), nonzero biases and BN statistics."""
    rng = np.random.RandomState(seed)
    for layer in masked_layers(model):
        layer.mask_logits.assign(rng.randn(*layer.mask_logits.shape).astype("float32") + shift)
        if layer.bias is not None:
            layer.bias.assign(0.1 * rng.randn(*layer.bias.shape).astype("float32"))
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.rand(*gamma.shape) + 0.5, 0.1 * rng.randn(*beta.shape),
                               0.1 * rng.randn(*mean.shape), rng.rand(*variance.shape) + 0.5])
    return rng


def _check_equal(model, shape, rng):
    x = rng.rand(4, *shape).astype("float32")
    small, report = keras_lottery.shrink(model, return_report=True)
    stripped = keras_lottery.strip(model)
    np.testing.assert_allclose(small.predict(x, verbose=0), stripped.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert not masked_layers(small)
    assert report["shrunk_parameters"] == small.count_params() < report["parameters"]
    return small, report


def test_a_unit_ticket_of_lenet_loses_its_units_and_keeps_its_outputs(tmp_path):
    keras.utils.set_random_seed(0)
    model = models.build("lenet300_100", (28, 28, 1), 10, mask_granularity="unit")
    rng = _randomize(model)
    small, report = _check_equal(model, (28, 28, 1), rng)
    for layer in masked_layers(model)[:-1]:  # the output keeps its 10 units
        kept = int((layer.mask_logits.numpy() > 0).sum())
        assert report["layers"][layer.name]["kept"] == kept
        assert small.get_layer(layer.name).units == kept
    assert small.get_layer("output").units == 10
    path = str(tmp_path / "shrunk.keras")
    small.save(path)
    loaded = keras.saving.load_model(path)  # plain Keras classes only
    assert {type(layer).__module__.split(".")[0] for layer in loaded.layers} == {"keras"}


def test_dead_units_of_an_unstructured_ticket_go_and_their_bias_is_folded():
    """Weight-granularity tickets have units whose weights are all gone: they output
    act(bias), a constant the next layer's bias absorbs."""
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((12,)), CSDense(6, activation="relu", name="a"),
                              CSDense(5, activation="tanh", name="b"),
                              CSDense(3, name="out")])
    rng = np.random.RandomState(2)
    for layer in masked_layers(model):
        logits = np.abs(rng.randn(*layer.mask_logits.shape)).astype("float32")
        layer.bias.assign(rng.randn(*layer.bias.shape).astype("float32"))  # act(b) != 0
        layer.mask_logits.assign(logits)
    dead = model.get_layer("a").mask_logits.numpy()
    dead[:, [1, 4]] = -1.0
    model.get_layer("a").mask_logits.assign(dead)
    small, report = _check_equal(model, (12,), rng)
    assert report["layers"]["a"]["removed"] == [1, 4] and small.get_layer("a").units == 4


def _conv_bn(input_shape=(12, 12, 3)):
    inputs = keras.Input(input_shape)
    x = inputs
    for index, filters in enumerate((8, 8, 16)):
        x = CSConv2D(filters, 3, padding="same", use_bias=False, mask_granularity="unit",
                     name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.ReLU()(x)
        if index == 1:
            x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = CSDense(20, activation="relu", mask_granularity="unit", name="fc")(x)
    return keras.Model(inputs, keras.layers.Dense(4, name="logits")(x))


def test_conv_batch_norm_flatten_dense_shrink_exactly():
    keras.utils.set_random_seed(2)
    model = _conv_bn()
    rng = _randomize(model, seed=3)
    small, report = _check_equal(model, (12, 12, 3), rng)
    # The last conv feeds Flatten -> Dense: its gone filters' constants fold exactly, so
    # all of them go; filters that feed a 'same'-padded conv with a nonzero constant stay.
    gone = int((model.get_layer("conv2").mask_logits.numpy() <= 0).sum())
    assert report["layers"]["conv2"]["kept"] == 16 - gone
    assert small.get_layer("fc").kernel.shape[0] == 6 * 6 * (16 - gone)


@pytest.mark.big_model
@pytest.mark.parametrize("name, shape", [("vgg16", (32, 32, 3)), ("resnet18", (16, 16, 3))])
def test_vgg_and_resnet_unit_tickets_shrink_exactly(name, shape):
    keras.utils.set_random_seed(3)
    model = models.build(name, shape, 10, mask_granularity="unit")
    rng = _randomize(model, seed=4)
    for layer in model.layers:  # fresh BN statistics: a gone filter's constant is 0
        if isinstance(layer, keras.layers.BatchNormalization) and layer.name.endswith("2_bn"):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([gamma, 0 * beta, 0 * mean, variance])
    small, report = _check_equal(model, shape, rng)
    if name == "resnet18":  # channels added together (residual Add) all stay
        assert report["layers"]["stage2_block2_conv2"]["kept"] == 32
        assert report["layers"]["stage2_block2_conv1"]["kept"] < 32


def test_a_residual_branch_that_keeps_no_unit_keeps_one_silent_unit():
    inputs = keras.Input((6,))
    hidden = CSDense(5, activation="gelu", name="ffn_in", mask_granularity="unit")(inputs)
    branch = keras.layers.Dense(6, name="ffn_out")(hidden)
    model = keras.Model(inputs, keras.layers.Dense(3, name="out")(
        keras.layers.Add()([inputs, branch])))
    layer = model.get_layer("ffn_in")
    layer.bias.assign(np.linspace(-1, 1, 5).astype("float32"))  # the branch adds a constant
    layer.mask_logits.assign(np.full((1, 5), -10.0, "float32"))
    small, report = keras_lottery.shrink(model, return_report=True)
    assert report["layers"]["ffn_in"] == {"units": 5, "kept": 1, "removed": [1, 2, 3, 4]}
    x = np.random.default_rng(0).normal(size=(4, 6)).astype("float32")
    np.testing.assert_allclose(small.predict(x, verbose=0),
                               keras_lottery.strip(model).predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_what_shrink_cannot_do_is_one_error_naming_the_layer():
    model = keras.Sequential([keras.Input((8,)), CSDense(4, name="a", mask_granularity="unit"),
                              CSDense(2, name="b")])
    model.get_layer("a").mask_logits.assign(-np.ones((1, 4), "float32"))
    with pytest.raises(ShrinkError, match="keeps no unit of layer 'a'"):
        keras_lottery.shrink(model)
    inputs = keras.Input((8,))
    x = CSDense(4, name="a", mask_granularity="unit")(inputs)
    x = keras.layers.Reshape((2, 2))(x)
    odd = keras.Model(inputs, keras.layers.Flatten()(x))
    odd.get_layer("a").mask_logits.assign(np.array([[1.0, -1.0, 1.0, 1.0]], "float32"))
    with pytest.raises(ShrinkError, match="'reshape"):
        keras_lottery.shrink(odd)


def _mobilenet_v2():
    return keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None,
                                          classes=10, classifier_activation=None)


@pytest.mark.slow
@pytest.mark.big_model
def test_a_mobilenet_v2_unit_ticket_shrinks_through_depthwise_convs_and_padding():
    """The depthwise channel is the group: its removal takes the expand conv's unit (nobody
    else reads it) and the project conv's input row (its constant folds: a 1x1 convolution
    never pads); sparsify masks only the layers whose units can go."""
    keras.utils.set_random_seed(0)
    with pytest.warns(UserWarning, match="left without unit masks"):
        model = keras_lottery.sparsify(_mobilenet_v2(), mask_granularity="unit")
    kinds = {type(layer).__name__ for layer in masked_layers(model)}
    assert "CSDepthwiseConv2D" in kinds
    masked = {layer.name for layer in masked_layers(model)}
    assert "block_2_expand" not in masked and "block_2_project" not in masked  # idle groups
    assert "block_2_depthwise" in masked and "block_1_depthwise" in masked  # (padded, stride 2)
    rng = _randomize(model, shift=0.0)
    small, report = _check_equal(model, (32, 32, 3), rng)
    depthwise = report["layers"]["block_2_depthwise"]
    assert report["layers"]["block_2_expand"]["kept"] == depthwise["kept"] < depthwise["units"]
    assert report["kept_for_padding"] == []
    cost = keras_lottery.DeployedCost(model, "macs")
    from keras_lottery.tickets.deployed_cost import DeployedCost  # the same count, shrunk
    assert cost.count() == DeployedCost(model, "macs").count()
    assert keras_lottery.tickets.size_report(small)["dense_macs_per_example"] == cost.count()


def test_a_squeeze_excite_block_shrinks_exactly_keeping_the_channels_it_gates():
    """EfficientNet-style: expand, depthwise, squeeze-excite (a Multiply), project. The gated
    channels reach a merge, so they stay; the block still shrinks where it can, exactly."""
    inputs = keras.Input((8, 8, 4))
    x = keras.layers.Conv2D(16, 1, use_bias=False, name="expand")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("swish")(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="depthwise")(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Activation("swish")(x)
    squeeze = keras.layers.GlobalAveragePooling2D(keepdims=True)(x)
    squeeze = keras.layers.Conv2D(4, 1, activation="swish", name="reduce")(squeeze)
    squeeze = keras.layers.Conv2D(16, 1, activation="sigmoid", name="excite")(squeeze)
    x = keras.layers.Multiply()([x, squeeze])
    x = keras.layers.Conv2D(8, 1, use_bias=False, name="project")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, name="head")(x))
    keras.utils.set_random_seed(2)
    masked = keras_lottery.sparsify(model, mask_granularity="unit", shrinkable_only=False)
    rng = _randomize(masked, shift=0.0)
    small, report = _check_equal(masked, (8, 8, 4), rng)
    assert report["layers"]["depthwise"]["kept"] == 16  # gated channels reach the Multiply
    assert report["layers"]["reduce"]["kept"] < 4 or report["layers"]["project"]["kept"] < 8


def test_the_mobilenet_v2_model_masks_its_depthwise_channels_and_follows_short_runs():
    model = models.build("mobilenet_v2", (32, 32, 3), 10, mask_granularity="unit",
                         options={"width_multiplier": 0.35})
    masked = {type(layer).__name__ for layer in masked_layers(model)}
    assert masked == {"CSDepthwiseConv2D", "CSConv2D", "CSDense"}
    assert model.get_layer("block_3_depthwise") in masked_layers(model)
    assert model.get_layer("block_3_expand") not in masked_layers(model)
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert norms and all(layer.momentum == 0.9 for layer in norms)
    assert model.output.shape[-1] == 10 and model.get_layer("predictions").activation.__name__ == "linear"


def test_load_deployed_shrinks_a_saved_ticket_and_loads_a_plain_model_as_it_is(tmp_path):
    from keras_lottery.tickets.deployment import load_deployed

    keras.utils.set_random_seed(0)
    model = models.build("conv4", (28, 28, 1), 10, mask_granularity="unit")
    _randomize(model)
    keras_lottery.saving.save_model(model, str(tmp_path / "ticket.keras"))
    deployed = load_deployed(str(tmp_path / "ticket.keras"))
    assert not masked_layers(deployed)
    assert deployed.count_params() < keras_lottery.strip(model).count_params()
    x = np.random.RandomState(1).rand(4, 28, 28, 1).astype("float32")
    expected = keras_lottery.strip(model, warn_undecided=False).predict(x, verbose=0)
    np.testing.assert_allclose(deployed.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    keras_lottery.strip(model, warn_undecided=False).save(str(tmp_path / "stripped.keras"))
    assert load_deployed(str(tmp_path / "stripped.keras")).count_params() == \
        deployed.count_params()  # a search's ticket.keras: zeros where units went
    deployed.save(str(tmp_path / "shrunk.keras"))
    again = load_deployed(str(tmp_path / "shrunk.keras"))
    assert again.count_params() == deployed.count_params()
    np.testing.assert_allclose(again.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="no such file '.*gone.keras': give a saved ticket"):
        load_deployed(str(tmp_path / "gone.keras"))
