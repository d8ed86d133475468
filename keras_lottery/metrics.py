"""`BitsPerCharacter`: a language model's cross-entropy per character in bits (`loss / ln 2`),
the metric of `kjv_chars` (compiled beside accuracy for the data sets in
`data.LANGUAGE_MODELS`)."""

import math

import keras


def bits_per_character(y_true, y_pred):
    """Cross-entropy of logits `y_pred` against the next ids `y_true`, in bits, per position."""
    nats = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
    return nats / math.log(2.0)


def in_bits(nats):
    """A cross-entropy in nats (a search's task loss) in bits (None stays None)."""
    return None if nats is None else float(nats) / math.log(2.0)


@keras.saving.register_keras_serializable(package="keras_lottery")
class BitsPerCharacter(keras.metrics.MeanMetricWrapper):
    """The mean cross-entropy per character of a model that outputs logits, in bits."""

    def __init__(self, name="bits_per_char", dtype=None):
        super().__init__(bits_per_character, name=name, dtype=dtype)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}
