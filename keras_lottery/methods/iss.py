"""Iterative Stochastic Sparsification (ISS, the paper's Algorithm 2), in one place.

- the mask rule ``stochastic``: ``m ~ Bernoulli(sigmoid(s))`` in training with a
  straight-through gradient, ``m = 1[s > 0]`` in inference; penalty ``||sigmoid(s)||_1``;
- the round end: every `s_T < s0` is removed for good (``s <- -inf``).
With `--supermask` it is the supermask setting of Zhou et al. (SS).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_lottery.layers import (
    REMOVED_LOGIT,
    MaskRule,
    masked_layers_by_key,
    register_rule,
)
from keras_lottery.layers.mask_rules import MAX_MASK_LOGIT, binary_mask
from keras_lottery.methods.base import LEARNED_MASK_SETTINGS, Method, Setting, at_least


def _philox_uniform(shape, seed_generator):
    """Uniform [0, 1) samples drawn with Philox, the next seed from `seed_generator`.

    `keras.random.uniform` leaves the algorithm to TensorFlow, which under XLA
    on CPU picks ThreeFry: about 60x slower on a LeNet-300-100 kernel. Philox
    is TensorFlow's default outside XLA, so eager and graph steps draw what
    they drew before.
    """
    if keras.backend.backend() != "tensorflow":
        return keras.random.uniform(shape, seed=seed_generator)
    seed = tf.cast(tf.math.floormod(seed_generator.next(), tf.int32.max - 1), tf.int32)
    return tf.random.stateless_uniform(shape, seed=seed, alg="philox")


@register_rule
class StochasticMask(MaskRule):
    """ISS / SS: ``m ~ Bernoulli(sigmoid(s))`` with a straight-through gradient.

    In training the forward pass uses the sample and the backward pass treats
    it as `sigmoid(s)` (`dm/ds = sigmoid'(s)`); in inference `m = 1[s > 0]`,
    the most likely mask.
    """

    name = "stochastic"
    samples = True

    def mask(self, layer, training=False):
        if not training:
            return binary_mask(layer.mask_logits)
        probability = ops.sigmoid(layer.mask_logits)
        uniform = _philox_uniform(ops.shape(probability), layer.seed_generator)
        sample = ops.cast(ops.less(uniform, probability), "float32")
        return probability + ops.stop_gradient(sample - probability)

    def mask_and_penalty(self, layer, training=False):
        return self.mask(layer, training), ops.sum(ops.sigmoid(layer.mask_logits))


class IterativeStochasticSparsification(Method):
    """ISS: `m ~ Bernoulli(sigmoid(s))`; round end removes every `s_T < s0` for good."""

    name = "iss"
    description = "iss (Iterative Stochastic Sparsification)"
    mask_rule = "stochastic"
    supermask_knob = "mask_init"
    settings = LEARNED_MASK_SETTINGS + (
        Setting("ss_eval", "threshold", "Supermasks of ISS (SS): threshold (the ticket 1[s > 0], "
                "always recorded) or sample (also the mean and spread of the test accuracy over "
                "--ss_eval_samples masks drawn from Bernoulli(sigmoid(s)), as Zhou et al. "
                "report SS).", choices=("threshold", "sample")),
        Setting("ss_eval_samples", 10, "Masks drawn with --ss_eval=sample.",
                check=at_least(1, integer=True)),
    )
    sweep_space = (
        ("mask_init", "float", dict(min_value=-1.0, max_value=2.0)),  # s0
        ("mask_penalty", "float", dict(min_value=1e-9, max_value=1e-6, sampling="log")),
        ("mask_learning_rate", "float", dict(min_value=1.0, max_value=100.0, sampling="log")),
    )

    @classmethod
    def title(cls, supermask=False):
        return "SS" if supermask else "ISS"  # Zhou et al.'s supermasks

    @classmethod
    def config_problems(cls, config):  # `config`: ISS's own settings
        if abs(config.mask_init) > MAX_MASK_LOGIT:  # the mask starts at sigmoid(s0)
            return [("mask_init", config.mask_init, "the mask would start saturated (no "
                     f"gradient); s0 must lie in [-{MAX_MASK_LOGIT:g}, {MAX_MASK_LOGIT:g}]")]
        return []

    def evaluate_searched(self, config, model, evaluate):
        """With `--supermask --ss_eval=sample`: the test accuracy under masks drawn from
        `Bernoulli(sigmoid(s_T))` (Zhou et al.'s way of reporting SS), mean and spread over
        `--ss_eval_samples` draws, beside the thresholded ticket."""
        if not (config.supermask and config.ss_eval == "sample"):
            return {}
        probabilities = {key: 1.0 / (1.0 + np.exp(-layer.mask_logits.numpy()))
                         for key, layer in masked_layers_by_key(model).items()}
        generator = np.random.default_rng(config.seed)
        accuracies = [evaluate({name: generator.random(p.shape) < p
                                for name, p in probabilities.items()})
                      for _ in range(config.ss_eval_samples)]
        return {"sampled_accuracy": float(np.mean(accuracies)),
                "sampled_accuracy_std": float(np.std(accuracies, ddof=1))
                if len(accuracies) > 1 else 0.0, "sampled_masks": len(accuracies)}

    def round_end(self, layers):
        for layer in layers:
            logits = layer.mask_logits.numpy()
            layer.mask_logits.assign(
                np.where(logits < layer.mask_init, REMOVED_LOGIT, logits).astype("float32"))
