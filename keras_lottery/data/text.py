"""`kjv_genres`: classify a verse of the King James Bible into one of 6 groups of books.

The text is on the machine: Debian's `bible-kjv-text` holds it and `bible-kjv`'s `bible`
program prints it, one verse per line (`bible -f gen1:1-rev22:21`: `Ge1:1 In the beginning
...`); a `kjv.txt` of such lines in `data_dir` is read instead when present. 31,102 verses of
66 books, grouped as the books are ordered:

    0 Law (Genesis-Deuteronomy)      3 Prophets (Isaiah-Malachi)
    1 History (Joshua-Esther)        4 Gospels and Acts (Matthew-Acts)
    2 Wisdom (Job-Song of Solomon)   5 Epistles and Revelation (Romans-Revelation)

The split keeps whole chapters together, by a fixed rule on a chapter's position among the
1,189 chapters: every 10th chapter (0, 10, 20, ...) is test, every 10th from the 5th
validation, the rest training. Verses become `SEQUENCE_LENGTH` token ids with Keras's
`TextVectorization` (lower case, punctuation stripped, the `VOCABULARY` most frequent words
of the training verses; 0 pads, 1 is an unknown word), adapted and applied through
`tf.data`.
"""

import os
import re
import shutil
import subprocess

import numpy as np

from keras_lottery.data.errors import DataError

#: The books of each class, by their count in canonical order.
GROUPS = (("Law", 5), ("History", 12), ("Wisdom", 5), ("Prophets", 17),
          ("Gospels and Acts", 5), ("Epistles and Revelation", 22))
SEQUENCE_LENGTH = 64
VOCABULARY = 8000
_VERSE = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+)\s+(.*)$")


def read_verses(data_dir=None, dataset="kjv_genres"):
    """`[(book, chapter, text)]` of every verse, from `data_dir/kjv.txt` or `bible`; a
    one-line DataError naming the Debian packages (and `dataset`) if neither is there."""
    local = os.path.join(data_dir, "kjv.txt") if data_dir else None
    if local and os.path.exists(local):
        with open(local, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    elif shutil.which("bible"):
        lines = subprocess.run(["bible", "-f", "gen1:1-rev22:21"], stdin=subprocess.DEVNULL,
                               capture_output=True, text=True, check=True).stdout.splitlines()
    else:
        raise DataError(f"{dataset} needs the King James text: apt-get install bible-kjv "
                        "bible-kjv-text (or a kjv.txt of 'Ge1:1 text' lines in --data_dir).")
    verses = [match.groups() for match in map(_VERSE.match, lines) if match]
    return [(book, int(chapter), text) for book, chapter, _, text in verses]


def genre_labels(books):
    """The class of each verse's book: books are numbered in the order they first appear."""
    order = {}
    for book in books:
        order.setdefault(book, len(order))
    bounds = np.cumsum([count for _, count in GROUPS])
    return np.searchsorted(bounds, [order[book] for book in books], side="right").astype(
        np.int32)


def chapter_splits(books, chapters):
    """`0` train, `1` validation, `2` test per verse, by its chapter's position."""
    index, previous, positions = -1, None, []
    for key in zip(books, chapters):
        if key != previous:
            index, previous = index + 1, key
        positions.append(index)
    positions = np.asarray(positions)
    return np.where(positions % 10 == 0, 2, np.where(positions % 10 == 5, 1, 0))


def vectorize(train_texts, *others):
    """Token ids of `train_texts` and of each of `others` (int32, `SEQUENCE_LENGTH` wide),
    with a `TextVectorization` adapted on `train_texts`; and the vocabulary's size."""
    import keras
    import tensorflow as tf

    vectorizer = keras.layers.TextVectorization(
        max_tokens=VOCABULARY, output_sequence_length=SEQUENCE_LENGTH)
    vectorizer.adapt(tf.data.Dataset.from_tensor_slices(train_texts).batch(1024))

    def ids(texts):
        batches = tf.data.Dataset.from_tensor_slices(texts).batch(1024).map(vectorizer)
        rows = [batch.numpy() for batch in batches]
        return (np.concatenate(rows) if rows else np.zeros((0, SEQUENCE_LENGTH))).astype(
            np.int32)

    return [ids(texts) for texts in (train_texts,) + others], len(vectorizer.get_vocabulary())


def load_kjv_genres(data_dir=None, train_examples=None, seed=0):
    """`(x_train, y_train, x_val, y_val, x_test, y_test, vocabulary size)` of `kjv_genres`;
    `train_examples` keeps that many training verses (a fixed draw from `seed`)."""
    books, chapters, texts = zip(*read_verses(data_dir))
    labels, split = genre_labels(books), chapter_splits(books, chapters)
    texts = np.asarray(texts, dtype=object)
    train = np.flatnonzero(split == 0)
    if train_examples:
        train = np.sort(np.random.RandomState(seed).permutation(train)[:train_examples])
    parts = [train, np.flatnonzero(split == 1), np.flatnonzero(split == 2)]
    (x_train, x_val, x_test), vocabulary = vectorize(*[texts[p].tolist() for p in parts])
    return (x_train, labels[parts[0]], x_val, labels[parts[1]], x_test, labels[parts[2]],
            vocabulary)
