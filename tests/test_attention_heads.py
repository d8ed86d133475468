"""Attention heads as mask groups (`mask_granularity="unit"`): one logit per head on the
output projection gates the whole head, through every method; `shrink` takes removed heads
out of `MultiHeadAttention` layers (blocks keep different numbers), through padding masks
and causal masks, with outputs equal to the stripped ticket's."""

import warnings

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import methods, models
from keras_lottery.layers import REMOVED_LOGIT, masked_layers_by_key

HEADS, KEY_DIM, WIDTH, TOKENS = 4, 8, 16, 6


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))


def _attention_model(causal=False, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((TOKENS, WIDTH))
    attended = keras.layers.MultiHeadAttention(HEADS, KEY_DIM, name="attention")(
        inputs, inputs, use_causal_mask=causal)
    x = keras.layers.Add(name="add")([inputs, attended])
    hidden = keras.layers.Dense(12, activation="relu", name="ff1")(x)
    x = keras.layers.Add(name="add2")([x, keras.layers.Dense(WIDTH, name="ff2")(hidden)])
    return keras.Model(inputs, keras.layers.Dense(3, name="output")(x))


def _heads(model):
    return masked_layers_by_key(model)["attention/attention_output"]


def test_a_head_logit_gates_the_whole_head_and_the_penalty_prices_its_four_slices():
    plain = _attention_model()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # query, key, value: not "left unmasked"
        model = keras_lottery.sparsify(plain, mask_granularity="unit", mask_init=2.0,
                                       mask_penalty=1e-3, shrinkable_only=False)
    layers = masked_layers_by_key(model)
    assert sorted(layers) == ["attention/attention_output", "ff1", "ff2", "output"]
    heads = layers["attention/attention_output"]
    assert heads.mask_granularity == "head" and tuple(heads.mask_logits.shape) == (HEADS, 1, 1)
    assert heads.group_size == KEY_DIM * WIDTH
    # lambda of a head counts its query, key, value and output slices: 4x its output slice.
    assert heads.mask_penalty == pytest.approx(4e-3)
    s = np.array([1.5, REMOVED_LOGIT, 0.7, -0.3], "float32")
    heads.mask_logits.assign(s.reshape(HEADS, 1, 1))
    heads.temperature.assign(50.0)
    x = np.random.default_rng(1).normal(size=(5, TOKENS, WIDTH)).astype("float32")
    # A removed head contributes nothing: the same as the plain model without any of its
    # four slices (a head of the plain model zeroed through its value projection).
    reference = keras.models.clone_model(plain)
    reference.set_weights(plain.get_weights())
    attention = reference.get_layer("attention")
    for index in (1, 3):  # m = 0 (REMOVED_LOGIT) and sigmoid(50 * -0.3) ~ 3e-7
        kernel, bias = attention._value_dense.get_weights()
        kernel[:, index], bias[index] = 0, 0
        attention._value_dense.set_weights([kernel, bias])
    for layer in ("ff1", "ff2", "output"):
        layers[layer].mask_logits.assign(np.full(layers[layer].mask_logits.shape, 5.0))
        layers[layer].temperature.assign(50.0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x)), keras.ops.convert_to_numpy(reference(x)), rtol=1e-4, atol=1e-5)
    model(x, training=True)
    head_penalty = 4e-3 * KEY_DIM * WIDTH * sigmoid(50 * s.astype("float64")).sum()
    assert heads.mask_penalty_value() == pytest.approx(head_penalty, rel=1e-5)


def test_the_penalty_in_macs_prices_a_head_with_its_attention():
    model = keras_lottery.sparsify(_attention_model(), mask_granularity="unit",
                                   mask_penalty=1.0, penalty_cost="macs",
                                   shrinkable_only=False)
    layers = masked_layers_by_key(model)
    # per example: a head's four slices cost 4 * 6 * 8 * 16 MACs and its attention
    # 6 * 6 * (8 + 8); ff1's unit costs 6 positions per weight.
    head_per_weight = (4 * TOKENS * KEY_DIM * WIDTH + TOKENS * TOKENS * 2 * KEY_DIM) / (
        KEY_DIM * WIDTH)
    ratio = layers["attention/attention_output"].mask_penalty / layers["ff1"].mask_penalty
    assert ratio == pytest.approx(head_per_weight / TOKENS, rel=1e-6)


def test_macs_count_the_attention_itself_for_every_head_it_keeps():
    """Beside its four projections, a head costs `T * T * (key_dim + value_dim)` MACs per
    example (scores and weighted values): counted for all heads when dense, for the heads the
    output projection still reads when nonzero, and by a MACs budget for the heads shrink
    keeps."""
    model = keras_lottery.sparsify(_attention_model(), mask_granularity="unit", mask_init=1.0,
                                   shrinkable_only=False)
    kernels = (3 * TOKENS * WIDTH * HEADS * KEY_DIM + TOKENS * HEADS * KEY_DIM * WIDTH
               + TOKENS * WIDTH * 12 + TOKENS * 12 * WIDTH + TOKENS * WIDTH * 3)
    per_head = TOKENS * TOKENS * 2 * KEY_DIM
    dense = keras_lottery.tickets.size_report(model)
    assert dense["dense_macs_per_example"] == kernels + HEADS * per_head
    assert dense["nonzero_macs_per_example"] == kernels + HEADS * per_head
    cost = keras_lottery.DeployedCost(model, "macs")
    assert cost.dense == kernels + HEADS * per_head
    _heads(model).mask_logits.assign(np.array([1.0, -1.0, -1.0, 1.0]).reshape(HEADS, 1, 1))
    half = keras_lottery.tickets.size_report(model)
    assert half["dense_macs_per_example"] == dense["dense_macs_per_example"]
    # two heads' output slices and their attention gone (q, k, v stay stored and nonzero)
    assert half["nonzero_macs_per_example"] == (kernels - 2 * TOKENS * KEY_DIM * WIDTH
                                                + 2 * per_head)
    shrunk = keras_lottery.tickets.size_report(keras_lottery.shrink(model))
    assert shrunk["dense_macs_per_example"] == (kernels - 2 * 4 * TOKENS * KEY_DIM * WIDTH
                                                + 2 * per_head)
    assert cost.count() == shrunk["dense_macs_per_example"]


def _head_model(method):
    arguments = method.layer_arguments(mask_init=1.0, mask_granularity="unit")
    model = models.build("transformer_tiny", (TOKENS,), 3, vocabulary_size=20, **arguments)
    return model, masked_layers_by_key(model)


def test_imp_ranks_heads_by_their_output_slice_and_random_pruning_removes_whole_heads():
    imp = methods.IterativeMagnitudePruning(0.5, "layerwise")
    model, layers = _head_model(imp)
    heads = layers["block0_attention/attention_output"]
    kernel = heads.unmasked_kernel.numpy()
    kernel *= np.array([3.0, 0.1, 2.0, 0.2])[:, None, None] / np.abs(kernel).mean()
    heads.unmasked_kernel.assign(kernel)
    imp.round_end(list(layers.values()))
    assert heads.ticket_mask()[:, 0, 0].tolist() == [True, False, True, False]
    random = methods.RandomPruning(0.5, "layerwise", seed=3)
    model, layers = _head_model(random)
    random.round_end(list(layers.values()))
    for key in ("block0_attention/attention_output", "block1_attention/attention_output"):
        mask = layers[key].ticket_mask()
        assert mask.sum(axis=(1, 2)).tolist().count(0) == 2  # two whole heads gone
        assert set(mask.sum(axis=(1, 2)).tolist()) == {0, mask[0].size}


def test_cs_resets_each_head_and_iss_samples_one_bernoulli_per_head():
    model, layers = _head_model(methods.ContinuousSparsification())
    heads = layers["block1_attention/attention_output"]
    heads.mask_logits.assign(np.array([-0.2, 0.1, 0.3, 0.05], "float32").reshape(4, 1, 1))
    heads.temperature.assign(10.0)
    methods.cs_mask_reset(heads, 1.0)
    np.testing.assert_allclose(heads.mask_logits.numpy().ravel(), [-2.0, 1.0, 1.0, 0.5],
                               rtol=1e-6)
    model, layers = _head_model(methods.IterativeStochasticSparsification())
    heads = layers["block0_attention/attention_output"]
    heads.mask_logits.assign(np.zeros((4, 1, 1), "float32"))
    mask = keras.ops.convert_to_numpy(heads.expand_mask(heads._mask_rule.mask(heads, True)))
    assert mask.shape == (4, 1, 1) or (mask == mask[:, :1, :1]).all()
    assert set(np.unique(mask)) <= {0.0, 1.0}


def _random_heads(model, kept_heads, seed=0):
    """A fixed-rule ticket: `kept_heads[block]` heads kept per block, random FFN units."""
    rng = np.random.default_rng(seed)
    for key, layer in masked_layers_by_key(model).items():
        mask = rng.random(layer.mask_logits.shape) < 0.6
        if layer.mask_granularity == "head":
            mask[:] = False
            mask[rng.permutation(mask.shape[0])[:kept_heads[key.split("/")[0]]]] = True
        elif key == "output":
            mask[:] = True
        layer.set_ticket_mask(mask)
        if layer.bias is not None:
            layer.bias.assign(0.1 * rng.normal(size=layer.bias.shape).astype("float32"))
    return rng


def _shrunk_equals_stripped(model, x):
    small, report = keras_lottery.shrink(model, return_report=True)
    stripped = keras_lottery.strip(model)
    np.testing.assert_allclose(small.predict(x, verbose=0), stripped.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)
    assert report["shrunk_parameters"] == small.count_params() < report["parameters"]
    return small, report


def test_an_encoder_with_padding_shrinks_its_heads_exactly(tmp_path):
    model = models.build("transformer_tiny", (12,), 3, vocabulary_size=30, mask_init=1.0,
                         mask_rule="fixed", mask_granularity="unit")
    rng = _random_heads(model, {"block0_attention": 1, "block1_attention": 3})
    x = rng.integers(1, 30, size=(6, 12))
    x[:3, 7:] = 0  # padded verses: Embedding(mask_zero=True)'s mask reaches attention, pool
    small, report = _shrunk_equals_stripped(model, x)
    assert [small.get_layer(f"block{b}_attention").num_heads for b in (0, 1)] == [1, 3]
    assert report["layers"]["block1_attention"]["kept"] == 3
    assert len(report["layers"]["block0_attention"]["removed"]) == 3
    path = str(tmp_path / "small.keras")
    small.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), small.predict(x, verbose=0),
                               rtol=1e-6, atol=1e-6)


def test_a_causal_decoder_shrinks_exactly_and_a_block_without_heads_keeps_one_silent_head():
    model = keras_lottery.sparsify(_attention_model(causal=True), mask_granularity="unit",
                                   method="imp", shrinkable_only=False)
    _random_heads(model, {"attention": 2})
    x = np.random.default_rng(2).normal(size=(4, TOKENS, WIDTH)).astype("float32")
    small, _ = _shrunk_equals_stripped(model, x)
    assert small.get_layer("attention").num_heads == 2
    # Causal: a change at the last position leaves the earlier outputs alone.
    changed = x.copy()
    changed[:, -1] += 1.0
    np.testing.assert_allclose(small.predict(changed, verbose=0)[:, :-1],
                               small.predict(x, verbose=0)[:, :-1], rtol=1e-5, atol=1e-6)
    _heads(model).set_ticket_mask(np.zeros((HEADS, 1, 1), bool))
    small, report = _shrunk_equals_stripped(model, x)  # the attention adds its bias alone
    assert small.get_layer("attention").num_heads == 1
    assert report["layers"]["attention"] == {"units": 4, "kept": 1, "removed": [1, 2, 3]}
    assert not any(np.any(w) for w in small.get_layer("attention").get_weights()[:-1])
    assert keras_lottery.DeployedCost(model, "parameters").count() == small.count_params()


@pytest.mark.tensorflow_only
def test_a_shrunk_encoder_converts_to_tflite_and_computes_the_same(tmp_path):
    from keras_lottery.tickets import TFLiteModel, export_tflite

    model = models.build("transformer_tiny", (12,), 3, vocabulary_size=30, mask_init=1.0,
                         mask_rule="fixed", mask_granularity="unit")
    rng = _random_heads(model, {"block0_attention": 2, "block1_attention": 1})
    small = keras_lottery.shrink(model)
    export_tflite(small, str(tmp_path / "small.tflite"))
    x = rng.integers(1, 30, size=(1, 12)).astype("int32")
    x[0, 9:] = 0  # padding
    np.testing.assert_allclose(TFLiteModel(str(tmp_path / "small.tflite"))(x),
                               small.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
@pytest.mark.tensorflow_only
def test_generation_is_timed_for_a_causal_ticket_and_both_runtimes_agree(tmp_path):
    from keras_lottery.tickets import TFLiteModel, export_tflite
    from keras_lottery.tickets.deployment import export_deployment, generate_greedily, keras_runner

    model = models.build("gpt_tiny", (16,), 20, vocabulary_size=20, mask_init=1.0,
                         mask_rule="fixed", mask_granularity="unit")
    _random_heads(model, {f"block{b}_attention": 1 + b % 3 for b in range(4)})
    window = np.random.default_rng(0).integers(1, 20, size=(1, 16)).astype("int32")
    small = keras_lottery.shrink(model)
    export_tflite(small, str(tmp_path / "small.tflite"))
    made = generate_greedily(keras_runner(small), window, 6)
    assert made == generate_greedily(TFLiteModel(str(tmp_path / "small.tflite")), window, 6)
    assert made == generate_greedily(keras_runner(keras_lottery.strip(model)), window, 6)
    report = export_deployment(model, str(tmp_path), batch_sizes=(1,), repeats=2, generate=4)
    generation = report["generation"]
    assert generation["tokens"] == 4 and all(v > 0 for v in
                                             generation["tokens_per_second"].values())
    assert set(generation["speedup"]) == {"keras", "tflite"}
    assert report["shrunk"]["units"]["block2_attention"] == 3  # heads kept


@pytest.mark.parametrize("kind", ["macs", "parameters"])
def test_deployed_cost_counts_heads_as_the_shrunk_network_does(kind):
    from keras_lottery.tickets.deployment import _all_kept, _counts

    model = models.build("transformer_tiny", (12,), 3, vocabulary_size=30, mask_init=1.0,
                         mask_rule="fixed", mask_granularity="unit")
    _random_heads(model, {"block0_attention": 1, "block1_attention": 3})
    cost = keras_lottery.DeployedCost(model, kind)
    heads = masked_layers_by_key(model)["block0_attention/attention_output"]
    assert cost.removable[cost.layers.index(heads)].all()  # every head can leave
    counts = _counts(keras_lottery.strip(_all_kept(model), warn_undecided=False),
                     keras_lottery.shrink(model))
    key = "macs_per_example" if kind == "macs" else "parameters"
    assert cost.fraction() == pytest.approx(counts[key]["deployed"] / counts[key]["dense"],
                                            rel=1e-9)
    assert cost.fraction() < 0.9


def test_imp_prunes_the_last_feed_forward_layer_when_the_output_layer_is_unmasked():
    imp = methods.IterativeMagnitudePruning(0.5, "layerwise")
    model = models.build("gpt_tiny", (16,), 20, vocabulary_size=20, mask_granularity="unit",
                         **{k: v for k, v in imp.layer_arguments(mask_granularity="unit").items()
                            if k != "mask_granularity"})
    layers = masked_layers_by_key(model)
    imp.round_end(list(layers.values()))
    assert layers["block3_ff1"].remaining_fraction() == pytest.approx(0.5)  # not the classes
    assert layers["block3_attention/attention_output"].remaining_fraction() == 0.5
