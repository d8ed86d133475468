"""sparsify / strip / export on several model shapes."""

import json
import warnings

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import models, tickets
from keras_lottery.layers import MaskedLayer, masked_layers


def _functional():
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="depthwise")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(4, name="output")(x)
    return keras.Model(inputs, outputs)


def _sequential_1d():
    return keras.Sequential([
        keras.Input((12, 2)),
        keras.layers.Conv1D(5, 3, padding="causal", activation="relu", name="conv1d"),
        keras.layers.Flatten(),
        keras.layers.Dense(3, name="head"),
    ])


def _nested():
    inner = keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, name="inner_dense")],
                             name="inner")
    inputs = keras.Input((6,))
    outputs = keras.layers.Dense(2, name="outer_dense")(inner(inputs))
    return keras.Model(inputs, outputs)


BUILDERS = {"functional": (_functional, (10, 10, 3)), "sequential_1d": (_sequential_1d, (12, 2)),
            "nested": (_nested, (6,))}


def _randomize_masks(model, seed=0):
    rng = np.random.RandomState(seed)
    for layer in masked_layers(model):
        s = rng.choice([-1.0, 1.0], size=layer.mask_logits.shape).astype("float32")
        layer.mask_logits.assign(s * rng.uniform(0.5, 2.0, size=s.shape).astype("float32"))


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_sparsify_keeps_weights_and_replaces_layers(name):
    build, shape = BUILDERS[name]
    model = build()
    x = np.random.RandomState(1).randn(4, *shape).astype("float32")
    masked = keras_lottery.sparsify(model, method="imp")
    # IMP starts dense: the masked copy computes exactly what the original does.
    np.testing.assert_array_equal(masked.predict(x, verbose=0), model.predict(x, verbose=0))
    assert masked_layers(masked)
    for layer in masked_layers(masked):
        original = next(l for l in model._flatten_layers() if l.name == layer.name)
        np.testing.assert_array_equal(layer.unmasked_kernel.numpy(), original.get_weights()[0])
        assert layer.mask_rule == "fixed" and layer.remaining_fraction() == 1.0
    # The original model is untouched and shares no variables with the copy.
    assert not any(isinstance(l, MaskedLayer) for l in model._flatten_layers())
    assert not {id(v) for v in masked.weights} & {id(v) for v in model.weights}


def test_sparsify_cs_defaults_and_exclude():
    model = _functional()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # excluded on purpose: no warning
        masked = keras_lottery.sparsify(model, mask_init=-0.02, mask_penalty=1e-6,
                                        exclude=["output"])
    names = {layer.name for layer in masked_layers(masked)}
    assert names == {"conv", "depthwise", "hidden"}
    assert type(masked.get_layer("output")) is keras.layers.Dense
    for layer in masked_layers(masked):
        assert layer.mask_rule == "continuous" and layer.mask_penalty == 1e-6
        np.testing.assert_array_equal(layer.mask_logits.numpy(), np.float32(-0.02))


def test_a_subclassed_model_without_a_config_is_masked_and_stripped_in_place_only():
    class Custom(keras.Model):
        def __init__(self):
            super().__init__()
            self.dense = keras.layers.Dense(2)
            self.conv = keras.layers.DepthwiseConv2D(1)

        def call(self, x):
            return self.dense(self.conv(x)[:, 0, 0, :])

    custom = Custom()
    x = np.random.default_rng(0).normal(size=(4, 1, 1, 3)).astype("float32")
    before = np.asarray(custom(x))
    with pytest.raises(ValueError, match="sparsify: cannot rebuild Custom.*in_place=True") as error:
        keras_lottery.sparsify(custom)
    assert "\n" not in str(error.value)
    masked = keras_lottery.sparsify(custom, method="imp", in_place=True)
    assert masked is custom and len(masked_layers(custom)) == 2
    np.testing.assert_array_equal(np.asarray(custom(x)), before)  # IMP starts dense: m = 1
    custom.dense.set_ticket_mask(np.array([[True, False], [False, True], [True, True]]))
    masked_output = np.asarray(custom(x))
    assert keras_lottery.strip(custom, in_place=True) is custom
    assert not masked_layers(custom) and type(custom.conv) is keras.layers.DepthwiseConv2D
    assert len(custom.weights) == 4  # kernel and bias of each: no mask variable left
    np.testing.assert_array_equal(np.asarray(custom(x)), masked_output)
    with pytest.raises(ValueError, match="does not have"):
        keras_lottery.sparsify(_functional(), exclude=["nope"])
    with pytest.raises(ValueError, match="Unknown method"):
        keras_lottery.sparsify(_functional(), method="magic")


@pytest.mark.parametrize("name", sorted(BUILDERS))
@pytest.mark.parametrize("method", ["imp", "iss"])
def test_strip_equals_masked_inference_bit_for_bit(name, method):
    build, shape = BUILDERS[name]
    masked = keras_lottery.sparsify(build(), method=method)
    _randomize_masks(masked)
    stripped = keras_lottery.strip(masked)
    assert not any(isinstance(l, MaskedLayer) for l in stripped._flatten_layers())
    x = np.random.RandomState(2).randn(8, *shape).astype("float32")
    np.testing.assert_array_equal(stripped.predict(x, verbose=0), masked.predict(x, verbose=0))


def test_strip_of_saturated_cs_model_is_exact_and_of_soft_model_close():
    model = models.build("conv2", (10, 10, 1), 3, mask_init=0.0)
    _randomize_masks(model, seed=3)
    x = np.random.RandomState(4).randn(6, 10, 10, 1).astype("float32")
    for layer in masked_layers(model):
        layer.temperature.assign(500.0)  # |beta * s| >= 250: sigmoid is exactly 0 or 1
    stripped = keras_lottery.strip(model)
    np.testing.assert_array_equal(stripped.predict(x, verbose=0), model.predict(x, verbose=0))
    # At beta = 1 the CS network computes with soft masks; strip keeps the binary ticket.
    for layer in masked_layers(model):
        layer.temperature.assign(1.0)
    assert not np.allclose(stripped.predict(x, verbose=0), model.predict(x, verbose=0))


def test_export_writes_stripped_model_masks_and_report(tmp_path):
    model = models.build("lenet300_100", (28, 28, 1), 10, mask_init=0.0)
    _randomize_masks(model, seed=5)
    report = tickets.export(model, str(tmp_path / "ticket"))
    saved = json.loads((tmp_path / "ticket" / "report.json").read_text())
    assert saved == json.loads(json.dumps(report))
    masks = tickets.load_masks(str(tmp_path / "ticket" / "masks.npz"))
    kept = sum(int(m.sum()) for m in masks.values())
    assert report["kept_weights"] == kept and report["maskable_weights"] == 266_200
    assert report["remaining"] == pytest.approx(kept / 266_200)
    # Dense LeNet: 266,200 kernel + 410 bias float32 values; its MACs are its kernel entries.
    assert report["dense_bytes"] == (266_200 + 410) * 4
    assert report["ticket_bytes"] == kept * 4 + sum((m.size + 7) // 8 for m in masks.values()) \
        + 410 * 4
    assert report["dense_macs_per_example"] == 266_200
    assert report["nonzero_macs_per_example"] == kept
    stripped = keras.models.load_model(str(tmp_path / "ticket" / "ticket.keras"))
    assert all(type(l) is not MaskedLayer for l in stripped.layers)
    # A stripped model's ticket is its nonzero kernel entries: a kept weight whose initial
    # value is exactly 0.0 (a draw in ~1e7) is not counted there.
    kept_nonzero = sum(int(np.count_nonzero(layer.unmasked_kernel.numpy() * masks[layer.name]))
                       for layer in masked_layers(model))
    assert tickets.size_report(stripped)["kept_weights"] == kept_nonzero
    assert kept - kept_nonzero <= 2


def test_conv_macs_count_output_positions(tmp_path):
    model = models.build("conv2", (8, 8, 1), 2, mask_init=1.0)
    report = tickets.size_report(model)
    conv = next(l for l in report["layers"] if l["name"] == "conv1_1")
    assert conv["nonzero_macs_per_example"] == 3 * 3 * 1 * 64 * 8 * 8


def test_an_exported_ticket_loads_in_plain_keras_without_keras_lottery(tmp_path):
    """`ticket.keras` loads with `keras.saving.load_model` in a fresh process that never imports
    keras_lottery, and computes what the masked model computes."""
    import subprocess
    import sys

    from keras_lottery import optimizers
    from keras_lottery.layers import CSDense

    # Fixed (binary) masks: the masked model computes exactly what its stripped copy does.
    model = keras.Sequential([keras.Input((6,)), CSDense(5, activation="relu", mask_rule="fixed"),
                              CSDense(2, mask_rule="fixed")])
    model.layers[0].set_ticket_mask(np.arange(30).reshape(6, 5) % 3 == 0)
    model.layers[1].set_ticket_mask(np.ones((5, 2), bool))
    model.compile(optimizer=optimizers.FusedSGD(0.1, momentum=0.9), loss="mse")
    tickets.export(model, str(tmp_path / "ticket"))
    x = np.linspace(-1, 1, 18, dtype="float32").reshape(3, 6)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, keras\n"
        f"model = keras.saving.load_model({str(tmp_path / 'ticket' / 'ticket.keras')!r})\n"
        f"np.save({str(tmp_path / 'y.npy')!r}, model(np.load({str(tmp_path / 'x.npy')!r})))\n"
        "assert not any(name.startswith('keras_lottery') for name in sys.modules)\n"
        "print(type(model).__name__, [type(l).__name__ for l in model.layers])\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=300, cwd=str(tmp_path))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Dense" in done.stdout and "CSDense" not in done.stdout
    expected = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=1e-6, atol=1e-6)


def test_sparsify_warns_of_dense_kernels_it_cannot_mask():
    class Scaled(keras.layers.Dense):  # a Dense subclass may compute differently: left plain
        pass

    inputs = keras.Input((4,))
    model = keras.Model(inputs, Scaled(2, name="scaled")(keras.layers.Dense(3)(inputs)))
    with pytest.warns(UserWarning, match=r"leaves 1 Dense/EinsumDense kernels unmasked: "
                                         r"\['scaled'\]"):
        keras_lottery.sparsify(model, in_place=True)
