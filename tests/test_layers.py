import keras
import numpy as np
import pytest
from keras import ops

from keras_lottery.layers import CSConv2D, CSDense, CSEinsumDense, masked_layers


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def test_dense_uses_masked_kernel_and_adds_penalty():
    layer = CSDense(4, mask_init=0.3, mask_penalty=0.5, activation="relu")
    x = np.random.RandomState(0).randn(5, 3).astype("float32")
    layer(x)
    s = np.random.RandomState(1).randn(3, 4).astype("float32")
    layer.mask_logits.assign(s)
    layer.temperature.assign(7.0)
    w, b = layer.unmasked_kernel.numpy(), layer.bias.numpy()
    expected = np.maximum(x @ (w * sigmoid(7.0 * s)) + b, 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.kernel), w * sigmoid(7.0 * s), rtol=1e-6)
    # The penalty lambda * ||sigmoid(beta s)||_1 reaches the model's loss.
    model = keras.Sequential([keras.Input((3,)), layer])
    model(x, training=True)
    assert len(model.losses) == 1
    np.testing.assert_allclose(float(model.losses[0]), 0.5 * sigmoid(7.0 * s).sum(), rtol=1e-5)


def test_conv_matches_plain_conv_with_effective_kernel():
    layer = CSConv2D(3, (3, 3), strides=2, padding="same", mask_init=0.1)
    x = np.random.RandomState(0).randn(2, 9, 9, 2).astype("float32")
    layer(x)
    layer.mask_logits.assign(np.random.RandomState(1).randn(*layer.mask_logits.shape))
    layer.temperature.assign(3.0)
    plain = keras.layers.Conv2D(3, (3, 3), strides=2, padding="same")
    plain(x)
    plain.set_weights([keras.ops.convert_to_numpy(layer.kernel), layer.bias.numpy()])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), keras.ops.convert_to_numpy(plain(x)), rtol=1e-5, atol=1e-6)


def test_variables_and_defaults():
    layer = CSDense(2, mask_init=-0.02)
    layer.build((None, 3))
    assert layer.mask_logits.trainable and not layer.temperature.trainable
    assert layer.unmasked_kernel.trainable
    assert tuple(layer.mask_logits.shape) == (3, 2)
    np.testing.assert_array_equal(layer.mask_logits.numpy(), np.full((3, 2), -0.02, "float32"))
    assert float(layer.temperature.numpy()) == 1.0
    assert layer.remaining_fraction() == 0.0
    layer.mask_logits.assign([[1, -1], [1, 1], [-1, -1]])
    assert layer.remaining_fraction() == pytest.approx(0.5)
    np.testing.assert_array_equal(layer.ticket_mask(),
                                  [[True, False], [True, True], [False, False]])


def test_fixed_rule_uses_binary_mask_and_freezes_s():
    layer = CSDense(2, mask_rule="fixed")
    layer.build((None, 2))
    assert not layer.mask_logits.trainable
    layer.set_ticket_mask(np.array([[True, False], [False, True]]))
    w = layer.unmasked_kernel.numpy()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), w * np.array([[1, 0], [0, 1]]))


def _model():
    inputs = keras.Input((6, 6, 1))
    x = CSConv2D(2, 3, mask_init=0.05, mask_penalty=1e-3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    outputs = CSDense(3, mask_init=-0.05, mask_penalty=2e-3, activation="softmax", name="fc")(x)
    return keras.Model(inputs, outputs)


def test_get_config_round_trip():
    layer = CSDense(7, mask_init=-0.3, mask_penalty=1e-5, use_bias=False, name="d")
    config = layer.get_config()
    assert config["mask_init"] == -0.3 and config["mask_penalty"] == 1e-5
    assert config["mask_rule"] == "continuous" and config["units"] == 7
    clone = CSDense.from_config(config)
    assert clone.get_config() == config
    conv = CSConv2D(4, (3, 1), padding="same", mask_init=0.2)
    assert CSConv2D.from_config(conv.get_config()).get_config() == conv.get_config()


@pytest.mark.parametrize("granularity, shape", [("weight", (6, 2, 3)), ("unit", (1, 2, 3))])
def test_einsum_dense_masks_attention_shaped_kernels_and_round_trips(granularity, shape, tmp_path):
    """`CSEinsumDense` as attention's query: `abc,cde->abde`; a unit is one (head, dim)."""
    layer = CSEinsumDense("abc,cde->abde", (None, 2, 3), bias_axes="de", mask_init=0.5,
                          mask_penalty=1e-3, mask_granularity=granularity, name="query")
    model = keras.Sequential([keras.Input((4, 6)), layer])
    assert tuple(layer.mask_logits.shape) == shape
    x = np.random.default_rng(0).normal(size=(2, 4, 6)).astype("float32")
    removed = np.ones(shape, bool)
    removed.reshape(-1)[0] = False
    layer.set_ticket_mask(np.broadcast_to(removed, layer.unmasked_kernel.shape))
    layer.temperature.assign(1e4)  # saturated: m is exactly b(s)
    kernel = layer.unmasked_kernel.numpy() * layer.ticket_mask()
    bias = layer.bias.numpy() * (removed.reshape(2, 3) if granularity == "unit" else 1)
    np.testing.assert_allclose(model(x), np.einsum("abc,cde->abde", x, kernel) + bias,
                               rtol=1e-5, atol=1e-6)
    config = layer.get_config()
    assert CSEinsumDense.from_config(config).get_config() == config
    model.save(str(tmp_path / "einsum.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "einsum.keras"))
    np.testing.assert_array_equal(loaded.layers[0].mask_logits.numpy(), layer.mask_logits.numpy())
    np.testing.assert_array_equal(loaded(x), model(x))
    with pytest.raises(ValueError, match="block.*Dense layers|takes 'weight' or 'unit'"):
        keras.Sequential([keras.Input((4, 6)), CSEinsumDense(
            "abc,cde->abde", (None, 2, 3), mask_granularity="block")])


def test_keras_save_and_load_round_trip(tmp_path):
    model = _model()
    x = np.random.RandomState(0).rand(4, 6, 6, 1).astype("float32")
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    model.fit(x, np.array([0, 1, 2, 0]), epochs=2, verbose=0)
    for layer in masked_layers(model):
        layer.temperature.assign(13.0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for original, restored in zip(masked_layers(model), masked_layers(loaded)):
        assert type(original) is type(restored)
        np.testing.assert_array_equal(original.unmasked_kernel.numpy(),
                                      restored.unmasked_kernel.numpy())
        np.testing.assert_array_equal(original.mask_logits.numpy(), restored.mask_logits.numpy())
        assert float(restored.temperature.numpy()) == 13.0
        assert restored.mask_penalty == original.mask_penalty
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


@pytest.mark.parametrize("kwargs, message", [
    ({"mask_penalty": -1.0}, "mask_penalty"),
    ({"mask_init": float("nan")}, "mask_init"),
    ({"mask_init": "big"}, "mask_init"),
    ({"mask_rule": "magic"}, "mask_rule"),
    ({"lora_rank": 2}, "lora"),
])
def test_bad_arguments_give_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        CSDense(3, **kwargs)


def test_mask_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        layer = CSDense(3, mask_penalty=1e-3)
        y = layer(np.ones((2, 4), "float32"))
        assert y.dtype == "float16"
        assert layer.mask_logits.dtype == "float32"
        assert layer.temperature.dtype == "float32"
        assert ops.convert_to_numpy(layer.soft_mask()).dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy("float32")


@pytest.mark.tensorflow_only
@pytest.mark.parametrize("dtype", ["float32", "mixed_float16"])
def test_fused_gradient_matches_the_papers_formula(dtype):
    """d/dw and d/ds of the fused CS kernel equal the derivative written out by hand."""
    import tensorflow as tf

    keras.mixed_precision.set_global_policy(dtype)
    try:
        rng = np.random.RandomState(0)
        layer = CSDense(4, mask_penalty=0.3)
        x = rng.randn(5, 3).astype("float32")
        layer(x)
        s = rng.randn(3, 4).astype("float32") * 0.2
        layer.mask_logits.assign(s)
        layer.temperature.assign(3.0)
        upstream = rng.randn(5, 4).astype("float32")
        with tf.GradientTape() as tape:
            y = tf.cast(layer(x, training=True), "float32")
            loss = tf.reduce_sum(y * upstream) + tf.add_n([tf.cast(v, "float32")
                                                           for v in layer.losses])
        g_w, g_s = tape.gradient(loss, [layer.unmasked_kernel.value, layer.mask_logits.value])
        w = layer.unmasked_kernel.numpy().astype("float32")
        m = sigmoid(3.0 * s)
        g_effective = x.T @ upstream  # dL/d(w*m) for a linear layer (no activation)
        tolerance = 1e-5 if dtype == "float32" else 2e-2
        np.testing.assert_allclose(np.asarray(g_w, "float32"), g_effective * m,
                                   rtol=tolerance, atol=tolerance)
        expected_s = (g_effective * w + 0.3) * 3.0 * m * (1 - m)
        np.testing.assert_allclose(np.asarray(g_s), expected_s, rtol=tolerance, atol=tolerance)
    finally:
        keras.mixed_precision.set_global_policy("float32")
