"""keras_lottery: lottery tickets in Keras 3 with Continuous Sparsification.

Modules, as in Keras itself:
    layers      CSDense, CSConv2D, CSConv1D, CSDepthwiseConv2D (masked layers; `masked_layer`)
    masking     mask rules: continuous (CS), stochastic (ISS), fixed (IMP, tickets)
    methods     ContinuousSparsification, IterativeStochasticSparsification,
                IterativeMagnitudePruning: where the methods differ
    callbacks   TemperatureCallback, RoundManager, MaskSummaries, TargetRemaining, and
                end_round (`rounds`): where every round ends
    optimizers  MaskOptimizer (separate optimizer for the mask logits s), FusedSGD
    native      the CPU kernel of the CS mask and its gradient (built on first use)
    tickets     extract_masks, save_masks, load_masks, build_ticket, export, size_report
    models      the paper's models by name (lenet300_100, conv2, conv4, conv6, resnet18, vgg16)
    data        Fashion-MNIST, MNIST, CIFAR-10 (IDX files, binary batches, tfds); `pipelines`
    search      `run(config)`: the lottery runner (`runner`, `phases`) in a run directory
                (`rundir`, `checkpoints`) behind `python -m apps.search`
    compat      the Keras internals the library relies on, each pinned by a test

and `sparsify(model)` / `strip(model)` to convert plain Keras models to masked ones and back.
"""

from keras_lottery import (callbacks, data, layers, masking, methods, models, native,
                           optimizers, tickets, weights)
from keras_lottery.callbacks import (MaskSummaries, RoundManager, TargetRemaining,
                                     TemperatureCallback, TemperatureSchedule, end_round)
from keras_lottery.config import ConfigError, SearchConfig
from keras_lottery.convert import sparsify, strip
from keras_lottery.layers import CSConv1D, CSConv2D, CSDense, CSDepthwiseConv2D

__version__ = "0.1.0"

__all__ = [
    "CSConv1D", "CSConv2D", "CSDense", "CSDepthwiseConv2D", "ConfigError", "MaskSummaries",
    "RoundManager", "SearchConfig", "TargetRemaining", "TemperatureCallback",
    "TemperatureSchedule", "callbacks", "end_round",
    "data", "layers", "masking", "methods", "models", "native", "optimizers", "sparsify", "strip",
    "tickets", "weights",
]
