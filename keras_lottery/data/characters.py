"""`kjv_chars`: next-character prediction on the King James Bible (a character-level language
model, where a smaller network costs accuracy).

The verses come from `text.read_verses` (Debian's `bible-kjv-text`, or `kjv.txt` in
`data_dir`) and are split by chapter as `kjv_genres` is (every 10th chapter test, every 10th
from the 5th validation, the rest training). Each split is one stream: its verses in canonical
order, each followed by a newline. The vocabulary is the characters of the training stream,
in sorted order from id 1; id 0 is the unknown symbol, which a character that only the
validation or test stream holds becomes. The streams are cut into windows of `CONTEXT + 1`
characters that overlap by one (a stride of `CONTEXT`): `x` is a window's first `CONTEXT`
ids, `y` the `CONTEXT` that follow each of them, so a causal model is scored at every position
(its loss is the mean cross-entropy per character; in bits: `loss / ln 2`).
"""

import numpy as np

from keras_lottery.data import text

#: Characters a model sees before predicting the next.
CONTEXT = 128
#: The id of a character the training stream does not hold.
UNKNOWN = 0


def vocabulary_of(stream):
    """`{character: id}` of `stream`'s characters, sorted, from id 1 (0 is `UNKNOWN`)."""
    return {character: index for index, character in enumerate(sorted(set(stream)), start=1)}


def encode(stream, vocabulary):
    """The ids of `stream`'s characters (int32), `UNKNOWN` for those not in `vocabulary`."""
    lookup = np.full(max(map(ord, stream), default=0) + 1, UNKNOWN, np.int32)
    for character, index in vocabulary.items():
        if ord(character) < lookup.size:
            lookup[ord(character)] = index
    return lookup[np.frombuffer(stream.encode("utf-32-le"), np.uint32)]


def windows(ids, context=CONTEXT):
    """`(x, y)`: consecutive windows of `context` ids and the id after each (int32)."""
    count = (len(ids) - 1) // context
    if count < 1:
        return np.zeros((0, context), np.int32), np.zeros((0, context), np.int32)
    x = ids[:count * context].reshape(count, context)
    y = ids[1:count * context + 1].reshape(count, context)
    return x.astype(np.int32), y.astype(np.int32)


def load_kjv_chars(data_dir=None, train_examples=None, seed=0):
    """`(x_train, y_train, x_val, y_val, x_test, y_test, vocabulary size)` of `kjv_chars`;
    `train_examples` keeps that many training windows (a fixed draw from `seed`)."""
    books, chapters, texts = zip(*text.read_verses(data_dir, dataset="kjv_chars"))
    split = text.chapter_splits(books, chapters)
    streams = ["".join(t + "\n" for t, part in zip(texts, split) if part == index)
               for index in range(3)]
    vocabulary = vocabulary_of(streams[0])
    (x_train, y_train), (x_val, y_val), (x_test, y_test) = (
        windows(encode(stream, vocabulary)) for stream in streams)
    if train_examples:
        keep = np.sort(np.random.RandomState(seed).permutation(len(x_train))[:train_examples])
        x_train, y_train = x_train[keep], y_train[keep]
    return x_train, y_train, x_val, y_val, x_test, y_test, len(vocabulary) + 1
