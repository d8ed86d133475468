"""`shrink` on keras-hub models built from config (issue 30): BERT and GPT-2 with head and
feed-forward unit tickets become functional models of Keras layers (`tickets.hub_unroll`),
blocks keeping different head counts, equal to the stripped ticket; they save, load, convert
to TFLite and (GPT-2) generate what keras-hub's own `generate` does."""

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import saving
from keras_lottery.layers.masked_layer import masked_layers_by_key
from keras_lottery.tickets import ShrinkError, generate

keras_hub = pytest.importorskip("keras_hub")

TOKENS, LENGTH, HEADS = 40, 8, 4


def _gpt2():
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=TOKENS, num_layers=2, num_heads=HEADS, hidden_dim=32,
        intermediate_dim=48, max_sequence_length=LENGTH)
    return keras_hub.models.GPT2CausalLM(backbone, preprocessor=None)


def _bert():
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=TOKENS, num_layers=2, num_heads=HEADS, hidden_dim=32,
        intermediate_dim=48, max_sequence_length=LENGTH)
    return keras_hub.models.BertTextClassifier(backbone, 3, preprocessor=None)


def _inputs(name, prompt_lengths=(LENGTH, 5, 3)):
    rng = np.random.default_rng(1)
    batch = len(prompt_lengths)
    x = {"token_ids": rng.integers(1, TOKENS, (batch, LENGTH)).astype("int32"),
         "padding_mask": (np.arange(LENGTH)[None] < np.array(prompt_lengths)[:, None]
                          ).astype("int32")}
    if name == "bert":
        x["segment_ids"] = (np.arange(LENGTH)[None].repeat(batch, 0) >= 4).astype("int32")
    return x


def _ticket(build, kept_heads=(1, 3), seed=0):
    """A unit ticket of `build()`: block b keeps `kept_heads[b]` heads, random FFN units."""
    keras.utils.set_random_seed(seed)
    with pytest.warns(UserWarning, match="feedforward_output_dense: its channels reach a merge"):
        model = keras_lottery.sparsify(build(), mask_granularity="unit", method="imp")
    rng = np.random.default_rng(seed)
    for key, layer in masked_layers_by_key(model).items():
        mask = rng.random(layer.mask_logits.shape) < 0.5
        if layer.mask_granularity == "head":
            block = int(key.split("transformer_layer_")[1].split("/")[0])
            mask[:] = False
            mask[rng.permutation(HEADS)[:kept_heads[block]]] = True
        elif key == "logits":
            mask[:] = True
        layer.set_ticket_mask(mask)
    return model


@pytest.mark.parametrize("name, build", [("gpt2", _gpt2), ("bert", _bert)])
def test_keras_hub_tickets_shrink_exactly_with_their_own_heads_per_block(name, build, tmp_path):
    model = _ticket(build)
    x = _inputs(name)
    small, report = keras_lottery.shrink(model, return_report=True)
    expected = keras.ops.convert_to_numpy(keras_lottery.strip(model)(x))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(small(x)), expected,
                               rtol=1e-5, atol=1e-5)
    attention = [layer for layer in small.layers
                 if isinstance(layer, keras.layers.MultiHeadAttention)]
    assert [layer.num_heads for layer in attention] == [1, 3]
    assert {layer.key_dim for layer in attention} == {32 // HEADS}  # the width per head stays
    assert report["shrunk_parameters"] == small.count_params() < report["parameters"]
    hidden = [layer for layer in small.layers if layer.name.endswith("intermediate_dense")]
    assert all(0 < layer.units < 48 for layer in hidden)
    path = str(tmp_path / "small.keras")
    saving.save_model(small, path)
    loaded = saving.load_model(path, compile=False)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected,
                               rtol=1e-5, atol=1e-5)


def test_a_shrunk_gpt2_generates_what_keras_hubs_own_generate_does():
    model = _ticket(_gpt2, kept_heads=(2, 1), seed=1)
    stripped = keras_lottery.strip(model)
    stripped.compile(sampler="greedy")
    prompts = _inputs("gpt2", prompt_lengths=(3, 5))
    theirs = stripped.generate(dict(prompts), stop_token_ids=None)
    ours = generate(keras_lottery.shrink(model), dict(prompts))
    np.testing.assert_array_equal(ours["token_ids"], keras.ops.convert_to_numpy(
        theirs["token_ids"]))
    assert (ours["token_ids"][:, :3] == prompts["token_ids"][:, :3]).all()
    with pytest.raises(ValueError, match="generate takes {'token_ids', 'padding_mask'}, got"):
        generate(stripped, {"token_ids": prompts["token_ids"]})


@pytest.mark.tensorflow_only
def test_a_shrunk_bert_converts_to_tflite_and_computes_the_same(tmp_path):
    from keras_lottery.tickets import TFLiteModel, export_tflite

    small = keras_lottery.shrink(_ticket(_bert))
    export_tflite(small, str(tmp_path / "small.tflite"))
    x = _inputs("bert")
    np.testing.assert_allclose(TFLiteModel(str(tmp_path / "small.tflite"))(x),
                               keras.ops.convert_to_numpy(small(x)), rtol=1e-4, atol=1e-4)


def test_a_block_with_cross_attention_is_refused_in_one_line():
    decoder_input, encoder_input = keras.Input((LENGTH, 16)), keras.Input((LENGTH, 16))
    block = keras_hub.layers.TransformerDecoder(32, 2, name="cross_block")
    model = keras.Model([decoder_input, encoder_input], block(decoder_input, encoder_input))
    with pytest.raises(ShrinkError, match="block 'cross_block' has cross-attention"):
        keras_lottery.shrink(model)


def test_keras_hub_blocks_in_a_users_functional_model_unroll_exactly_with_implicit_padding():
    from keras_lottery.tickets import hub_unroll

    keras.utils.set_random_seed(0)
    tokens = keras.Input((LENGTH,), dtype="int32")
    x = keras.layers.Embedding(TOKENS, 16, mask_zero=True)(tokens)  # Keras's own padding mask
    x = keras_hub.layers.TransformerEncoder(32, 2, name="encoder")(x)
    x = keras_hub.layers.TransformerDecoder(32, 2, name="decoder")(x)
    model = keras.Model(tokens, [keras.layers.Dense(4)(x), keras.layers.Dense(3)(
        keras.layers.GlobalAveragePooling1D()(x))])
    ids = np.random.default_rng(0).integers(1, TOKENS, (3, LENGTH))
    ids[1, 5:], ids[2, 2:] = 0, 0
    origins = {}
    unrolled = hub_unroll.unroll(model, origins)
    assert not any(hub_unroll.is_block(layer) for layer in unrolled.layers)
    assert origins["encoder_self_attention_layer"] is model.get_layer("encoder")._self_attention_layer
    for theirs, ours, shrunk in zip(model(ids), unrolled(ids), keras_lottery.shrink(model)(ids)):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(ours),
                                      keras.ops.convert_to_numpy(theirs))
        np.testing.assert_allclose(keras.ops.convert_to_numpy(shrunk),
                                   keras.ops.convert_to_numpy(theirs), rtol=1e-6, atol=1e-6)
