# ruff: noqa: E402  (the backend check runs before any import that loads Keras)
"""keras_lottery: lottery tickets in Keras 3 with Continuous Sparsification.

The library is a house of rooms; each imports only from the rooms listed before it:

    backends          which Keras backends it runs on (checked before Keras loads)
    compat, io_utils  the floor: Keras internals (each pinned by a test), atomic files,
    version           and the version
    layers            the one masking mechanism: MaskedLayer, CSDense, CSEinsumDense, CSConv2D,
                      ...; mask rules (the continuous one every layer defaults to, the
                      ticket's `s > 0`); the annealing clock; mask_in_place
    saving            save_model/load_model for layers masked inside other layers
    methods           one module per method: cs (beta's annealing and the reset
                      min(beta_T*s_T, s0)), iss, imp, random_pruning
    tickets           masks, ticket models, weight snapshots, sparsify/strip, export
    callbacks         RoundManager and end_round (where every round ends), MaskSummaries, ...
    models            the paper's models by name
    optimizers        MaskOptimizer (s with its own optimizer), FusedSGD, coupled decay
    data              Fashion-MNIST, MNIST, CIFAR-10, the King James text (kjv_genres,
                      kjv_chars) and their tf.data pipelines
    metrics           BitsPerCharacter (a language model's loss in bits)
    search            SearchConfig and the runner: the loop over steps in a run directory
    report            tables and figures from results.json files
    sweep             keras-tuner sweeps of searches
    apps              the command-line apps (absl)

`sparsify(model)` / `strip(model)` convert any Keras model to a masked one and back (a copy,
or `in_place=True`). It runs on Keras's TensorFlow and JAX backends (`backends`).
"""

from keras_lottery import backends as _backends

_backends.require_supported()  # before Keras loads: one line on a backend we do not run on

from keras_lottery import (
                           callbacks,
                           compat,
                           data,
                           layers,
                           methods,
                           metrics,
                           models,
                           optimizers,
                           saving,
                           search,
                           tickets,
)
from keras_lottery.callbacks import (
                           Budget,
                           MaskSummaries,
                           RoundManager,
                           TargetRemaining,
                           TemperatureCallback,
                           TemperatureSchedule,
                           end_round,
)
from keras_lottery.layers import (
                           CSConv1D,
                           CSConv2D,
                           CSDense,
                           CSDepthwiseConv2D,
                           CSEinsumDense,
                           native,
)
from keras_lottery.search import ConfigError, SearchConfig, load_run
from keras_lottery.tickets import BudgetTarget, DeployedCost, shrink, sparsify, strip
from keras_lottery.tickets import snapshots as weights
from keras_lottery.version import __version__

__all__ = [
    "Budget", "BudgetTarget", "CSConv1D", "CSConv2D", "CSDense", "CSDepthwiseConv2D",
    "CSEinsumDense", "ConfigError", "DeployedCost",
    "MaskSummaries", "RoundManager", "SearchConfig", "TargetRemaining", "TemperatureCallback",
    "TemperatureSchedule", "callbacks", "compat", "data", "end_round", "layers", "load_run",
    "methods", "metrics", "models", "native",
    "optimizers", "saving", "search", "shrink", "sparsify",
    "strip", "tickets", "weights", "__version__",
]
