"""Room `methods`: the search methods, each in its own module with everything that is its own.

    base            Method (what a method decides) and Setting (a setting it declares)
    cs              Continuous Sparsification: the `continuous` rule sigmoid(beta*s), the
                    annealing of beta (TemperatureCallback), the reset min(beta_T*s_T, s0)
    native          the CPU kernel of CS's mask and its gradient (built on first use)
    iss             Iterative Stochastic Sparsification: the `stochastic` rule, s <- -inf
    pruning         what IMP and random pruning share: prune the lowest-scored survivors
    imp             Iterative Magnitude Pruning: score |w|
    random_pruning  random pruning: a random score (the sanity baseline)

A new method is one module and one line in `METHODS` below. Where a round ends for every
method: `keras_lottery.callbacks.round_manager.end_round`.
May import: `keras_lottery.layers`, `keras_lottery.compat`.
"""

from keras_lottery.methods.base import Method, Setting
from keras_lottery.methods.cs import (
    CS_RESETS,
    ContinuousSparsification,
    TemperatureCallback,
    TemperatureSchedule,
    cs_mask_reset,
    set_temperature,
)
from keras_lottery.methods.imp import IterativeMagnitudePruning
from keras_lottery.methods.iss import IterativeStochasticSparsification
from keras_lottery.methods.pruning import PruningMethod, prune_global, prune_layerwise
from keras_lottery.methods.random_pruning import RandomPruning

#: Every method by its `--method` name.
METHODS = {method.name: method for method in (
    ContinuousSparsification, IterativeStochasticSparsification, IterativeMagnitudePruning,
    RandomPruning,
)}

__all__ = ["CS_RESETS", "METHODS", "ContinuousSparsification", "IterativeMagnitudePruning",
           "IterativeStochasticSparsification", "Method", "PruningMethod", "RandomPruning",
           "Setting", "TemperatureCallback", "TemperatureSchedule", "available_methods",
           "cs_mask_reset", "from_config", "get", "prune_global", "prune_layerwise",
           "set_temperature", "settings"]


def available_methods():
    return sorted(METHODS)


def get(name):
    """The `Method` class called `name`; a one-line ValueError naming the choices otherwise."""
    if name not in METHODS:
        raise ValueError(f"Unknown method {name!r}; expected one of {available_methods()}.")
    return METHODS[name]


def from_config(config):
    """The `Method` a `SearchConfig` describes."""
    return get(config.method).from_config(config)


def settings():
    """Every method's own settings, each once (methods may share one `Setting`), with the
    methods that read it: `{name: (Setting, [method names])}`."""
    found = {}
    for method in METHODS.values():
        for setting in method.settings:
            known, readers = found.setdefault(setting.name, (setting, []))
            if known != setting:
                raise TypeError(f"methods declare setting {setting.name!r} twice, differently.")
            readers.append(method.name)
    return found
