"""The text benchmark: `kjv_genres` (King James verses in 6 groups of books, split by chapter)
and `transformer_tiny`, whose attention is masked in place, through the search app."""

import json
import os
import shutil

import numpy as np
import pytest

from apps import search as search_app
from keras_lottery import data, models
from keras_lottery.data import text
from keras_lottery.layers import CSEinsumDense, masked_layers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOKS = ["Ge", "Exo", "Lev", "Num", "Deu"] + [f"H{chr(97 + i)}" for i in range(12)] + [
    f"W{chr(97 + i)}" for i in range(5)] + [f"P{chr(97 + i)}" for i in range(17)] + [
    "Mat", "Mark", "Luke", "John", "Acts"] + [f"{1 + i % 2}E{chr(97 + i)}" for i in range(22)]


def _write_corpus(directory, chapters=4, verses=3):
    """A `kjv.txt` in the `bible -f` layout: 66 books of `chapters` x `verses` verses whose
    words name their group, so that the genre can be learned."""
    words = ["law", "kings", "psalm", "prophet", "gospel", "epistle"]
    bounds = np.cumsum([count for _, count in text.GROUPS])
    lines = []
    for index, book in enumerate(BOOKS):
        group = int(np.searchsorted(bounds, index, side="right"))
        for chapter in range(1, chapters + 1):
            for verse in range(1, verses + 1):
                lines.append(f"{book}{chapter}:{verse} and the {words[group]} said unto them "
                             f"verse {verse}.")
    (directory / "kjv.txt").write_text("\n".join(lines) + "\n")
    return str(directory)


def test_genres_follow_the_books_and_chapters_stay_in_one_split(tmp_path):
    verses = text.read_verses(_write_corpus(tmp_path))
    books, chapters, _ = zip(*verses)
    labels = text.genre_labels(books)
    assert len(set(books)) == 66 and len(verses) == 66 * 12
    assert np.bincount(labels).tolist() == [count * 12 for _, count in text.GROUPS]
    split = text.chapter_splits(books, chapters)
    for key in set(zip(books, chapters)):
        chosen = split[[i for i, k in enumerate(zip(books, chapters)) if k == key]]
        assert len(set(chosen.tolist())) == 1, key  # a chapter is never divided
    assert split[0] == 2 and split[5 * 3] == 1  # chapter 0 is test, chapter 5 validation
    assert 0.08 < np.mean(split == 2) < 0.12 and 0.08 < np.mean(split == 1) < 0.12


@pytest.mark.skipif(not shutil.which("bible"), reason="needs Debian's bible-kjv")
def test_the_real_text_gives_31102_verses_in_six_groups():
    splits = data.load("kjv_genres")
    labels = np.concatenate([splits.y_train, splits.y_val, splits.y_test])
    assert len(labels) == 31102 and splits.num_classes == 6
    assert 0.22 < np.bincount(labels).max() / len(labels) < 0.24  # History, about 23%
    assert splits.x_train.dtype == np.int32 and splits.input_shape == (text.SEQUENCE_LENGTH,)
    assert splits.vocabulary_size == text.VOCABULARY and splits.x_train.max() < text.VOCABULARY


def test_transformer_tiny_masks_every_projection_and_needs_a_vocabulary():
    model = models.build("transformer_tiny", (16,), 6, vocabulary_size=100, mask_init=0.1)
    keys = [layer.name for layer in masked_layers(model)]
    assert len(keys) == 13 and sum(isinstance(layer, CSEinsumDense)
                                   for layer in masked_layers(model)) == 8
    unmasked = models.build("transformer_tiny", (16,), 6, vocabulary_size=100,
                            unmasked=["block0_attention", "output"])
    assert len(masked_layers(unmasked)) == 8
    with pytest.raises(ValueError, match="needs a text data set"):
        models.build("transformer_tiny", (16,), 6)


def _run(flagfile, out, corpus, *extra):
    flags = search_app.FLAGS
    flags.unparse_flags()
    flags(["search", f"--flagfile={ROOT}/apps/flags/{flagfile}", f"--output_dir={out}",
           f"--data_dir={corpus}", "--epochs=1", "--ticket_epochs=1", "--batch_size=32",
           "--verbose=0", "--nodeployment", *extra])
    try:
        config = search_app.config_from_flags(flags)
    finally:
        flags.unparse_flags()
    from keras_lottery import search

    search.run(config)
    with open(os.path.join(out, "results.json")) as handle:
        return json.load(handle)


@pytest.mark.parametrize("flagfile, rounds", [
    pytest.param("cs_transformer_kjv.cfg", 1, marks=pytest.mark.slow),
    pytest.param("imp_transformer_kjv.cfg", 2, marks=pytest.mark.slow)])
def test_the_text_flagfiles_run_end_to_end_on_a_slice(flagfile, rounds, tmp_path):
    corpus = _write_corpus(tmp_path)
    results = _run(flagfile, str(tmp_path / "run"), corpus, f"--rounds={rounds}")
    record = results["rounds"][-1]
    assert results["model"]["vocabulary_size"] > 10
    per_layer = record["remaining_per_layer"]
    assert {"block0_attention/query", "block1_attention/attention_output",
            "block1_ff2", "output"} <= set(per_layer) and len(per_layer) == 13
    assert 0 < record["remaining"] < 1 and 0 <= record["ticket_accuracy"] <= 1
    assert os.path.exists(tmp_path / "run" / "ticket" / f"round_{rounds}" / "ticket.keras")
