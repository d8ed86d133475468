"""The character-level language model: `kjv_chars` (128-character windows of the King James
text, the next character at every position, split by chapter), `gpt_tiny` (causal, heads and
feed-forward units as mask groups) and bits per character in a search's records."""

import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_text import _write_corpus

import keras_lottery
from keras_lottery import models
from keras_lottery.data import characters, text
from keras_lottery.layers import masked_layers_by_key
from keras_lottery.metrics import BitsPerCharacter

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_windows_predict_the_next_character_and_unknown_ones_become_0(tmp_path):
    vocabulary = characters.vocabulary_of("abca\n")
    assert vocabulary == {"\n": 1, "a": 2, "b": 3, "c": 4}
    ids = characters.encode("abz\u00e9a", vocabulary)  # z and é: not in the training text
    assert ids.tolist() == [2, 3, 0, 0, 2]
    x, y = characters.windows(np.arange(10), context=4)
    assert x.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7]] and y.tolist() == [[1, 2, 3, 4],
                                                                        [5, 6, 7, 8]]
    corpus = _write_corpus(tmp_path, chapters=10, verses=4)
    *arrays, vocabulary_size = characters.load_kjv_chars(corpus)
    x_train, y_train, x_val, y_val, x_test, y_test = arrays
    assert x_train.shape[1:] == (characters.CONTEXT,) and x_train.dtype == np.int32
    np.testing.assert_array_equal(x_train[:, 1:], y_train[:, :-1])  # y is x shifted by one
    assert len(x_train) > 7 * len(x_test) > 0 and len(x_val) > 0
    verses = text.read_verses(corpus)
    train_text = "".join(t + "\n" for (_, _, t), part in zip(verses, text.chapter_splits(
        *zip(*[(b, c) for b, c, _ in verses]))) if part == 0)
    assert vocabulary_size == len(set(train_text)) + 1
    assert x_train.max() < vocabulary_size and x_train.min() >= 1  # no unknown in training


def test_bits_per_character_is_the_cross_entropy_over_ln_2():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(3, 5, 7)).astype("float32")
    labels = rng.integers(0, 7, size=(3, 5))
    metric = BitsPerCharacter()
    metric.update_state(labels, logits)
    nats = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(labels, logits)
    assert float(metric.result()) == pytest.approx(float(nats) / math.log(2), rel=1e-5)
    assert BitsPerCharacter.from_config(metric.get_config()).name == "bits_per_char"


def test_gpt_tiny_masks_heads_and_feed_forward_units_and_is_causal():
    model = models.build("gpt_tiny", (16,), 20, vocabulary_size=20, mask_granularity="unit",
                         mask_init=1.0)
    layers = masked_layers_by_key(model)
    assert sorted(layers) == sorted([f"block{b}_attention/attention_output" for b in range(4)]
                                    + [f"block{b}_ff1" for b in range(4)])
    assert all(tuple(layers[f"block{b}_attention/attention_output"].mask_logits.shape)
               == (4, 1, 1) for b in range(4))
    x = np.random.default_rng(0).integers(0, 20, size=(2, 16))
    changed = x.copy()
    changed[:, 9:] = (changed[:, 9:] + 1) % 20
    one, two = model.predict(x, verbose=0), model.predict(changed, verbose=0)
    assert one.shape == (2, 16, 20)
    np.testing.assert_allclose(one[:, :9], two[:, :9], rtol=1e-5, atol=1e-5)
    assert np.abs(one[:, 9:] - two[:, 9:]).max() > 1e-3
    weights = models.build("gpt_tiny", (16,), 20, vocabulary_size=20)
    assert len(masked_layers_by_key(weights)) == 4 * 6  # 4 projections, ff1, ff2 per block
    with pytest.raises(ValueError, match="needs a character data set"):
        models.build("gpt_tiny", (28, 28, 1), 10)


def test_kjv_chars_without_the_text_is_one_error_naming_the_package(tmp_path):
    env = dict(os.environ, PATH="/nonexistent", PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    out = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-m", "apps.search", "--dataset=kjv_chars", "--model=gpt_tiny",
         f"--data_dir={tmp_path / 'empty'}", f"--output_dir={out}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "kjv_chars" in errors[0] and "bible-kjv-text" in errors[0]
    assert "Traceback" not in done.stderr and not out.exists()


@pytest.mark.slow
def test_a_unit_search_of_gpt_tiny_reports_bits_per_character_and_shrinks(tmp_path):
    from test_text import _run

    corpus = _write_corpus(tmp_path, chapters=10, verses=4)
    # One epoch on a toy text: CS removes every head at any lambda that removes units (the
    # heads' use is learned later than the units'), and shrink refuses a block without heads;
    # so the attention stays unmasked here (head shrinking: test_attention_heads).
    attention = ",".join(f"block{b}_attention" for b in range(4))
    results = _run("cs_unit_gpt_kjv.cfg", str(tmp_path / "run"), corpus, "--rounds=1",
                   "--batch_size=8", "--mask_penalty=3e-6", "--mask_init=0.05",
                   f"--unmasked_layers={attention}", "--dense_baseline",
                   "--steps_per_execution=1",
                   # with every head kept, attention alone is 43% of the MACs
                   "--target_macs=0.5")
    (record,) = results["rounds"]
    assert results["model"]["vocabulary_size"] > 10
    for value in (record["search_bits_per_char"], record["ticket_bits_per_char"],
                  results["dense"]["test_bits_per_char"]):
        assert 0 < value < 8
    history = record["ticket_history"][-1]
    assert "bits_per_char" in history and "val_bits_per_char" in history
    assert history["bits_per_char"] == pytest.approx(history["task_loss"] / math.log(2),
                                                     rel=1e-4)
    assert results["flags"]["dataset"] == "kjv_chars"
    ticket = keras.saving.load_model(str(tmp_path / "run" / "ticket" / "ticket.keras"))
    small = keras_lottery.shrink(ticket)
    assert small.count_params() < ticket.count_params()
    x = np.random.default_rng(0).integers(1, results["model"]["vocabulary_size"], (2, 128))
    np.testing.assert_allclose(small.predict(x, verbose=0), ticket.predict(x, verbose=0),
                               rtol=1e-4, atol=1e-4)
