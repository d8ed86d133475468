"""Bits per character in a search's records: a language model's data set (`kjv_chars`) has its
test loss reported in bits wherever accuracy is (`results.json`, the log, TensorBoard's
`Results/*_bits_per_char`), and its deployment record times generating
`GENERATED_CHARACTERS` characters."""

from keras_lottery.data import LANGUAGE_MODELS
from keras_lottery.metrics import in_bits

#: Characters a language model's deployment record times the generation of.
GENERATED_CHARACTERS = 128


def bits_record(config, prefix, task_loss):
    """`{"<prefix>_bits_per_char": task loss in bits}` for a language model's data set (its
    task loss is the mean cross-entropy per character, in nats), else empty."""
    if config.dataset not in LANGUAGE_MODELS or task_loss is None:
        return {}
    return {f"{prefix}_bits_per_char": in_bits(task_loss)}


def scalars(config, prefix, task_loss):
    """`bits_record` as TensorBoard summary tags."""
    return summary_scalars(bits_record(config, prefix, task_loss))


def summary_scalars(record):
    """`record`'s entries as TensorBoard summary tags (`Results/<name>`)."""
    return {f"Results/{name}": value for name, value in record.items()}


def bits_text(bits):
    """`", <bits> bits/char"` for a language model's record, else empty."""
    return "" if bits is None else f", {bits:.3f} bits/char"


def generated_characters(config):
    """How many characters the deployment record times the generation of (0: not a language
    model's data set)."""
    return GENERATED_CHARACTERS if config.dataset in LANGUAGE_MODELS else 0
