"""The channels of a tensor as `shrink`'s plan follows them (`Channels`), and the rules of the
layers that pass channels through with a change: activations, zero padding, BatchNormalization
and Flatten."""

import dataclasses

import numpy as np

from keras_lottery.tickets.shrink_error import ShrinkError


class Conflict(Exception):
    """A gone unit's nonzero constant cannot be folded into its reader: keep the unit."""

    def __init__(self, producers):
        super().__init__()
        self.producers = producers


@dataclasses.dataclass
class Channels:
    """The channels of a tensor: `kept` (original indices) of `total`; `constant` maps a gone
    channel to `(value, producer unit)`: what it outputs everywhere, and who made it."""

    kept: np.ndarray
    total: int
    constant: dict

    @classmethod
    def full(cls, total):
        return cls(np.arange(total), total, {})


def through_activation(activation, constant):
    """`constant` (`{channel: (value, producer)}`) through an activation layer, in one call."""
    if not constant:
        return {}
    values = np.asarray(activation(np.array([[v for v, _ in constant.values()]], "float32")))[0]
    return {c: (float(v), p) for (c, (_, p)), v in zip(constant.items(), values)}


def through_padding(inputs, ignored):
    """Zero padding passes channels; a nonzero constant becomes position-dependent there, so
    its producer stays (unless nobody reads the channel, `ignored`)."""
    padded = [p for c, (v, p) in inputs.constant.items()
              if v != 0 and not (ignored is not None and ignored[c])]
    if padded:
        raise Conflict(padded)
    return inputs


def through_batch_norm(layer, inputs, trained_statistics=False):
    """`(weights, channels)` of a BatchNormalization after its input lost channels: its
    parameters of the kept channels, and constants mapped through it (as 1.0, a nonzero, with
    `trained_statistics`: a fresh BN maps 0 to 0, a trained one does not)."""
    if layer.axis not in (-1, len(layer.input.shape) - 1):
        raise ShrinkError(f"shrink: {layer.name!r} normalizes axis {layer.axis}; shrink "
                          "handles channels-last models.")
    names = [w.name for w in layer.weights]
    values = dict(zip(names, [np.array(w) for w in layer.get_weights()]))
    ones = np.ones(inputs.total, "float32")
    gamma, beta = values.get("gamma", ones), values.get("beta", 0 * ones)
    mean, variance = values["moving_mean"], values["moving_variance"]
    constant = {c: (1.0 if trained_statistics else float(
        gamma[c] * (v - mean[c]) / np.sqrt(variance[c] + layer.epsilon) + beta[c]), p)
        for c, (v, p) in inputs.constant.items()}
    return [values[n][inputs.kept] for n in names], dataclasses.replace(inputs, constant=constant)


def through_flatten(layer, inputs):
    positions = int(np.prod(layer.input.shape[1:-1]))
    total = inputs.total
    kept = (np.arange(positions)[:, None] * total + inputs.kept[None, :]).ravel()
    constant = {p * total + c: value for p in range(positions)
                for c, value in inputs.constant.items()}
    return Channels(kept, positions * total, constant)


def arrays_of(layer, kernels=None, key=None):
    """`[kernel, bias...]` of a layer with a kernel: `kernels[key]` (`key` defaults to the
    layer's name) if given, else its weights."""
    given = (kernels or {}).get(key or layer.name)
    return [np.asarray(a) for a in given] if given else [np.array(w) for w in layer.get_weights()]
