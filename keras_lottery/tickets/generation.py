"""Greedy generation for a causal language model that has no `generate` of its own: a shrunk
keras-hub `GPT2CausalLM` is a functional model (`hub_unroll`), so it continues a prompt here,
one full forward pass per new token (no key/value cache).

`generate(model, {"token_ids", "padding_mask"})` fills every position whose `padding_mask` is
0 with the most likely next token, left to right, as keras-hub's `CausalLM.generate` does
with `sampler="greedy"` and `stop_token_ids=None`: prompts may differ in length (each row
keeps its own prompt), and the output has the inputs' length.
"""

import numpy as np


def generate(model, inputs):
    """`{"token_ids", "padding_mask"}` (numpy) with each row's padded positions generated.

    Args:
        model: a causal language model taking `{"token_ids": (batch, length) int,
            "padding_mask": (batch, length)}` and returning logits `(batch, length, vocab)`.
        inputs: the prompts: `token_ids` and `padding_mask` (1 or True on prompt tokens).
    """
    if set(inputs) != {"token_ids", "padding_mask"}:
        raise ValueError(f"generate takes {{'token_ids', 'padding_mask'}}, got {sorted(inputs)}.")
    ids = np.array(inputs["token_ids"], dtype="int32")
    prompt = np.array(inputs["padding_mask"], dtype=bool)
    if ids.ndim != 2 or prompt.shape != ids.shape:
        raise ValueError(f"generate: token_ids {ids.shape} and padding_mask {prompt.shape} must "
                         "be two arrays of the same shape (batch, length).")
    everywhere = np.ones_like(ids)
    for index in range(max(1, int(prompt.sum(axis=1).min())), ids.shape[1]):
        if prompt[:, index].all():
            continue
        logits = model.predict_on_batch({"token_ids": ids, "padding_mask": everywhere})
        chosen = np.argmax(np.asarray(logits)[:, index - 1], axis=-1).astype("int32")
        ids[:, index] = np.where(prompt[:, index], ids[:, index], chosen)
    return {"token_ids": ids, "padding_mask": np.ones_like(prompt)}
