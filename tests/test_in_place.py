"""Any Keras model: transformers (attention's EinsumDense), subclassed and keras-hub models are
masked in place or by copy, train, strip, save and load (issue 23)."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import compat, saving, tickets
from keras_lottery.callbacks import TemperatureCallback
from keras_lottery.layers import CSEinsumDense, MaskedLayer, masked_layers

keras_hub = pytest.importorskip("keras_hub")

TOKENS, LENGTH, CLASSES = 50, 8, 3


def _encoder():
    """A functional 2-block encoder: 2 x (4 attention EinsumDense + 2 Dense) + 1 Dense = 13."""
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(TOKENS, 16)(tokens)
    for block in range(2):
        attended = keras.layers.MultiHeadAttention(4, 4, name=f"attention_{block}")(x, x)
        x = keras.layers.LayerNormalization()(x + attended)
        hidden = keras.layers.Dense(32, activation="relu", name=f"ff_in_{block}")(x)
        x = keras.layers.LayerNormalization()(x + keras.layers.Dense(16, name=f"ff_out_{block}")(hidden))
    outputs = keras.layers.Dense(CLASSES, name="logits")(keras.layers.GlobalAveragePooling1D()(x))
    return keras.Model(tokens, outputs)


@keras.saving.register_keras_serializable(package="tests")
class Block(keras.layers.Layer):
    """A custom layer holding attention and a Dense."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.attention = keras.layers.MultiHeadAttention(2, 8, name="attention")
        self.dense = keras.layers.Dense(16, activation="relu", name="dense")

    def call(self, x):
        return self.dense(x + self.attention(x, x))


@keras.saving.register_keras_serializable(package="tests")
class Subclassed(keras.Model):
    """A subclassed model: Embedding, a Block and an output Dense: 4 + 1 + 1 = 6 kernels."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.embedding = keras.layers.Embedding(TOKENS, 16, name="embedding")
        self.block = Block(name="block")
        self.head = keras.layers.Dense(CLASSES, name="head")

    def call(self, tokens):
        return self.head(keras.ops.mean(self.block(self.embedding(tokens)), axis=1))


def _subclassed():
    model = Subclassed()
    model(np.zeros((1, LENGTH), "int32"))
    return model


def _hub_inputs(batch, segments=False):
    rng = np.random.default_rng(1)
    inputs = {"token_ids": rng.integers(0, TOKENS, (batch, LENGTH)).astype("int32"),
              "padding_mask": np.ones((batch, LENGTH), bool)}
    if segments:
        inputs["segment_ids"] = np.zeros((batch, LENGTH), "int32")
    return inputs


def _bert():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=TOKENS, num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=64,
        max_sequence_length=LENGTH)
    return keras_hub.models.BertTextClassifier(backbone, CLASSES, preprocessor=None)


def _gpt2():
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=TOKENS, num_layers=2, num_heads=4, hidden_dim=64, intermediate_dim=64,
        max_sequence_length=LENGTH)
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)


def _labels(name, batch):
    rng = np.random.default_rng(2)
    if name == "gpt2":
        return rng.integers(0, TOKENS, (batch, LENGTH)).astype("int32")
    return rng.integers(0, CLASSES, batch).astype("int32")


#: name -> (builder, inputs of a batch, kernels masked: every Dense and EinsumDense)
MODELS = {
    "encoder": (_encoder, lambda b: np.random.default_rng(1).integers(0, TOKENS, (b, LENGTH)), 13),
    "subclassed": (_subclassed, lambda b: np.random.default_rng(1).integers(0, TOKENS, (b, LENGTH)), 6),
    "bert": (_bert, lambda b: _hub_inputs(b, segments=True), 14),
    "gpt2": (_gpt2, _hub_inputs, 12),
}


def _kernels(model):
    return [layer for layer in compat.flatten_layers(model)
            if isinstance(layer, (keras.layers.Dense, keras.layers.EinsumDense))]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_kernel_is_masked_in_place_and_by_copy_keeping_the_class(name):
    build, inputs, count = MODELS[name]
    keras.utils.set_random_seed(0)
    model = build()
    x = inputs(4)
    expected = keras.ops.convert_to_numpy(model(x))
    copy = keras_lottery.sparsify(model, mask_init=-0.5, mask_scaling=True)
    assert type(copy) is type(model) and not masked_layers(model)  # the original untouched
    assert len(masked_layers(copy)) == count == len(_kernels(copy))
    assert all(isinstance(layer, MaskedLayer) for layer in _kernels(copy))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(copy(x)), expected, atol=2e-6)
    assert keras_lottery.sparsify(model, in_place=True, mask_init=-0.5, mask_scaling=True) is model
    assert len(masked_layers(model)) == count
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), expected, atol=2e-6)
    masks = tickets.extract_masks(model)
    assert len(masks) == count  # one unique key per layer, though names repeat across blocks
    if name in ("bert", "gpt2"):
        assert len({layer.name for layer in masked_layers(model)}) < count  # names repeat
    tickets.apply_masks(copy, {key: ~mask for key, mask in masks.items()})
    assert all(layer.ticket_mask().all() for layer in masked_layers(copy))  # s0 < 0: all were 0


@pytest.mark.parametrize("name", sorted(MODELS))
def test_fit_moves_every_s_and_anneals_every_beta_and_strip_is_exact(name):
    build, inputs, count = MODELS[name]
    keras.utils.set_random_seed(0)
    model = keras_lottery.sparsify(build(), mask_init=0.2, mask_penalty=1e-4, in_place=True)
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = [layer.mask_logits.numpy().copy() for layer in masked_layers(model)]
    model.fit(inputs(8), _labels(name, 8), batch_size=4, epochs=2, verbose=0,
              callbacks=[TemperatureCallback(final_temperature=50.0)])
    for layer, s in zip(masked_layers(model), before):
        assert not np.array_equal(layer.mask_logits.numpy(), s), layer.name
        assert float(layer.temperature.numpy()) == pytest.approx(50.0, rel=1e-4), layer.name
    # Saturate the masks (s = +-1 at beta 1e4): sigmoid(beta * s) is exactly 0 or 1.
    rng = np.random.default_rng(3)
    for layer in masked_layers(model):
        layer.mask_logits.assign(np.where(rng.random(layer.mask_logits.shape) < 0.5, -1.0, 1.0))
        layer.temperature.assign(1e4)
    stripped = keras_lottery.strip(model)
    assert type(stripped) is type(model)
    assert not [layer for layer in compat.flatten_layers(stripped) if isinstance(layer, MaskedLayer)]
    x = inputs(4)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(stripped(x)),
                                  keras.ops.convert_to_numpy(model(x)))


def test_saved_masked_models_load_with_w_s_beta_and_resume_identically(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_lottery.sparsify(_encoder(), mask_init=0.1, mask_penalty=1e-4, in_place=True)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = MODELS["encoder"][1](16), _labels("encoder", 16)
    model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "masked.keras")
    saving.save_model(model, path)
    with pytest.raises(ValueError, match="could not be loaded"):
        keras.saving.load_model(path)  # Keras alone rebuilds attention's layers plain
    loaded = saving.load_model(path)
    assert isinstance(loaded.get_layer("attention_0")._query_dense, CSEinsumDense)
    for a, b in zip(model.weights + model.optimizer.variables,
                    loaded.weights + loaded.optimizer.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    assert len(loaded.optimizer.variables) == len(model.optimizer.variables) > 30  # momenta
    for resumed in (model, loaded):
        resumed.fit(x, y, batch_size=8, epochs=1, verbose=0, shuffle=False)
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=a.path)
    stripped = str(tmp_path / "ticket.keras")
    keras_lottery.strip(loaded).save(stripped)
    plain = keras.saving.load_model(stripped)
    assert not masked_layers(plain)


def test_a_stripped_gpt2_ticket_generates_and_keras_hub_models_save_and_load(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras_lottery.sparsify(_gpt2(), method="imp")
    layer = masked_layers(model)[0]
    layer.set_ticket_mask(np.random.default_rng(0).random(layer.unmasked_kernel.shape) < 0.5)
    path = str(tmp_path / "gpt2.keras")
    saving.save_model(model, path)
    loaded = saving.load_model(path, compile=False)
    assert type(loaded) is type(model) and len(masked_layers(loaded)) == 12
    x = _hub_inputs(2)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(loaded(x)),
                                  keras.ops.convert_to_numpy(model(x)))
    ticket = keras_lottery.strip(loaded)
    ticket.save(str(tmp_path / "ticket.keras"))
    check = ("import sys, keras, keras_hub; model = keras.saving.load_model(sys.argv[1]); "
             "assert 'keras_lottery' not in sys.modules; print(type(model).__name__)")
    done = subprocess.run([sys.executable, "-c", check, str(tmp_path / "ticket.keras")],
                          capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == "GPT2CausalLM", done.stderr[-2000:]  # keras-hub alone loads it
    generated = ticket.generate({"token_ids": x["token_ids"][:, :LENGTH],
                                 "padding_mask": np.arange(LENGTH)[None].repeat(2, 0) < 3},
                                stop_token_ids=None)
    assert np.asarray(generated["token_ids"]).shape == (2, LENGTH)


def test_in_place_refusals_name_the_layer_and_change_nothing():
    lora = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="adapted")])
    lora.layers[0].enable_lora(2)
    with pytest.raises(ValueError, match="'adapted' .*LoRA enabled"):
        keras_lottery.sparsify(lora, in_place=True)
    quantized = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="q")])
    quantized.quantize("int8")
    with pytest.raises(ValueError, match="'q' .*quantized"):
        keras_lottery.sparsify(quantized)
    inputs = keras.Input((4, 6))
    hidden = keras.layers.Dense(6, name="first")(inputs)
    outputs = keras.layers.EinsumDense("abc,dc->abd", (4, 5), name="transposed")(hidden)
    model = keras.Model(inputs, outputs)
    weights = len(model.weights)
    with pytest.raises(ValueError, match="'transposed' .*output axes last"):
        keras_lottery.sparsify(model, in_place=True, mask_granularity="unit")
    assert not masked_layers(model) and len(model.weights) == weights  # nothing half-masked
    # (shrink cannot take units out of 'first', which EinsumDense reads: masked on request)
    assert len(masked_layers(keras_lottery.sparsify(model, mask_granularity="unit",
                                                    exclude=["transposed"],
                                                    shrinkable_only=False))) == 1


def test_two_layers_with_one_key_are_an_error_not_an_overwrite():
    class Twins(keras.Model):
        def __init__(self):
            super().__init__()
            self.first = keras.layers.Dense(3, name="twin")
            self.second = keras.layers.Dense(2, name="twin")

        def call(self, x):
            return self.second(self.first(x))

    model = Twins()
    model(np.zeros((1, 4), "float32"))
    keras_lottery.sparsify(model, in_place=True)
    with pytest.raises(ValueError, match="two masked layers have the key 'twin'"):
        tickets.extract_masks(model)


def test_keras_hub_attention_gets_head_masks_and_a_head_ticket_still_generates():
    keras.utils.set_random_seed(0)
    model = keras_lottery.sparsify(_gpt2(), method="imp", mask_granularity="unit")
    heads = [layer for layer in masked_layers(model) if layer.mask_granularity == "head"]
    assert len(heads) == 2 and all(tuple(h.mask_logits.shape) == (4, 1, 1) for h in heads)
    plain = [layer for layer in compat.flatten_layers(model)
             if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert all(not isinstance(p._query_dense, keras_lottery.layers.MaskedLayer) for p in plain)
    heads[0].set_ticket_mask(np.array([True, False, False, True]).reshape(4, 1, 1))
    x = _hub_inputs(2)
    ticket = keras_lottery.strip(model)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ticket(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-5, atol=1e-5)
    kernel = [layer for layer in compat.flatten_layers(ticket)
              if layer.name == heads[0].name][0].kernel
    assert not np.any(keras.ops.convert_to_numpy(kernel)[[1, 2]])  # the removed heads' slices
    generated = ticket.generate({"token_ids": x["token_ids"][:, :LENGTH],
                                 "padding_mask": np.arange(LENGTH)[None].repeat(2, 0) < 3},
                                stop_token_ids=None)
    assert np.asarray(generated["token_ids"]).shape == (2, LENGTH)
