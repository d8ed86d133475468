"""`SearchConfig`: every knob of a ticket search, checked up front.

Each bad value raises `ConfigError` with one line that names the value and
what is allowed, before any data is loaded or any file written.
"""

import dataclasses
import math
import os

from keras_lottery import data, distribute, methods, models
from keras_lottery.setting_help import GROUPS, HELP  # noqa: F401  (part of this module's API)

OPTIMIZERS = ("sgd", "adam")
MASK_OPTIMIZERS = ("same",) + OPTIMIZERS
PRUNE_SCOPES = ("layerwise", "global")
WEIGHT_DECAY_MODES = ("decoupled", "coupled")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")
#: Largest |beta_0 * s0| a search accepts: sigmoid'(10) is 4.5e-5, and past ~17 it is 0.
MAX_MASK_LOGIT = 10.0


def choices():
    """The allowed values of every setting that takes one of a fixed set (flags as enums)."""
    return {"method": methods.available_methods(), "model": models.available_models(),
            "dataset": data.available_datasets(), "optimizer": OPTIMIZERS,
            "mask_optimizer": MASK_OPTIMIZERS, "weight_decay_mode": WEIGHT_DECAY_MODES,
            "reset": methods.CS_RESETS, "input_scaling": data.SCALINGS,
            "prune_scope": PRUNE_SCOPES, "distribute": distribute.STRATEGIES,
            "mixed_precision": PRECISIONS}


def settings_difference(old, new, ignore=()):
    """The first settings that differ between two `to_dict()`s, as flags (`--k=new (was old)`),
    or "" when they agree on every setting not in `ignore`. A setting `old` lacks (it was
    added to `SearchConfig` after `old` was written) counts as its default there."""
    defaults = SearchConfig().to_dict()
    old = {**{k: defaults[k] for k in new if k not in old and k in defaults}, **old}
    changed = sorted(k for k in set(old) | set(new)
                     if k not in ignore and old.get(k) != new.get(k))
    return ", ".join(f"--{k}={new.get(k)!r} (was {old.get(k)!r})" for k in changed[:3])


class ConfigError(ValueError):
    """A search setting that is out of range or unknown."""


@dataclasses.dataclass
class SearchConfig:
    """A ticket search. Paper symbols: `s0` = mask_init, `lambda` = mask_penalty,
    `beta_0` / `beta_T` = initial / final_temperature, `k` = rewind_epoch."""

    method: str = "cs"  # cs, imp or iss
    supermask: bool = False  # freeze w at w_0 and learn only the mask
    model: str = "lenet300_100"
    init_from: str = ""  # a saved .keras model to start from instead of --model
    unmasked_layers: tuple = ()  # layers without a mask (never pruned)
    dataset: str = "fashion_mnist"
    data_dir: str = ""
    train_examples: int = 0  # 0: the whole training set (minus validation)
    validation_examples: int = data.VALIDATION_EXAMPLES
    augment: bool = False  # random crop after 4-pixel padding and horizontal flip
    rounds: int = 3
    epochs: int = 10  # per round
    batch_size: int = 128
    optimizer: str = "sgd"
    learning_rate: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 1e-4  # never applied to the mask logits s
    weight_decay_mode: str = "decoupled"  # decoupled (Keras) or coupled (L2 in the gradient)
    keep_optimizer_state: bool = False  # keep momenta and step count across rounds
    reset: str = "paper"  # CS reset: paper min(beta_T*s_T, s0) or official min(s_T, s0)
    input_scaling: str = "standardize"  # standardize or unit ([0, 1])
    lr_decay_epochs: tuple = ()  # epochs of each round at which the lr of w is multiplied
    lr_decay_factor: float = 0.1
    mask_optimizer: str = "same"  # optimizer of s: same (as w), sgd or adam
    mask_learning_rate: float = 0.0  # 0: the learning rate of w
    mask_momentum: float = 0.0  # SGD momentum of s when --mask_optimizer=sgd
    mask_scaling: bool = False  # CS: mask times 1/sigmoid(s0) (official code)
    mask_init: float = -0.01  # s0
    mask_penalty: float = 1e-6  # lambda
    target_remaining: float = 0.0  # the last ticket keeps this fraction; 0: off
    target_start: float = 0.5  # fraction of each round before TargetRemaining re-centres s
    initial_temperature: float = 1.0  # beta_0
    final_temperature: float = 200.0  # beta_T
    temperature_per_epoch: bool = False
    official_temperature: bool = False  # per epoch, beta_T ** (e / (E - 1)) (official code)
    prune_fraction: float = 0.2  # IMP: share of surviving weights pruned per round
    prune_scope: str = "layerwise"  # IMP: layerwise or global
    prune_fraction_conv: float = 0.0  # IMP layerwise rate of conv layers (0: prune_fraction)
    prune_fraction_dense: float = 0.0  # IMP layerwise rate of dense layers (0: prune_fraction)
    prune_fraction_output: float = 0.0  # IMP layerwise rate of the last layer (0: dense rate)
    rewind_epoch: int = -1  # k for rewinding w <- w_k between rounds; -1: no rewinding
    ticket_epoch: int = 2  # tickets retrain from the weights after this many epochs
    ticket_epochs: int = 10  # 0: do not retrain tickets
    reuse_next_round: bool = True  # IMP: round r+1's training is ticket r's retraining
    dense_baseline: bool = True  # also train the dense network from w_0, as long as a ticket
    seed: int = 0
    jit_compile: bool = False
    steps_per_execution: int = 1  # training steps per call into the compiled step (Keras)
    distribute: str = "auto"  # auto, none, mirrored, multi_worker
    mixed_precision: str = "none"  # none, mixed_float16, mixed_bfloat16
    dry_run: bool = False  # build everything, run 2 steps of each phase, write nothing
    deterministic: bool = True  # tf.config.experimental.enable_op_determinism()
    overwrite: bool = False  # replace a run with other settings in output_dir
    output_dir: str = "runs/quickstart"
    verbose: int = 1

    def __post_init__(self):
        # A given model starts at its own outputs: CS scales its masks by 1/sigmoid(s0).
        if self.init_from and self.method == "cs":
            self.mask_scaling = True

    def validate(self):
        """Raises `ConfigError` on the first bad setting (`check_settings`); returns self."""
        check_settings(self)
        return self

    def to_dict(self):
        settings = dataclasses.asdict(self)
        settings["unmasked_layers"] = list(self.unmasked_layers)
        settings["lr_decay_epochs"] = list(self.lr_decay_epochs)
        return settings

    @classmethod
    def from_dict(cls, settings):
        """The config a `to_dict()` (a results.json's `flags`) describes; keys that are not
        settings are ignored, settings it lacks take their defaults."""
        known = {k: v for k, v in settings.items() if k in cls.field_names()}
        for name in ("unmasked_layers", "lr_decay_epochs"):
            if name in known:
                known[name] = tuple(known[name])
        return cls(**known)

    def for_dry_run(self):
        """The settings a `--dry_run` uses: one short round, no files kept."""
        return dataclasses.replace(
            self, rounds=1, epochs=1, lr_decay_epochs=(), dense_baseline=False,
            ticket_epochs=min(self.ticket_epochs, 1), ticket_epoch=min(self.ticket_epoch, 1),
            rewind_epoch=min(self.rewind_epoch, 1))

    @classmethod
    def field_names(cls):
        return [field.name for field in dataclasses.fields(cls)]

    @classmethod
    def help_text(cls, name):
        """The one-line help of setting `name` (its flag's help)."""
        return HELP[name]


def check_settings(self):
    """Raises `ConfigError` naming the first bad setting of `self` (a `SearchConfig`)."""

    def fail(name, value, allowed):
        raise ConfigError(f"--{name}={value!r} is invalid: {allowed}.")

    if self.method not in methods.available_methods():
        fail("method", self.method, f"expected one of {methods.available_methods()}")
    if self.mask_optimizer not in MASK_OPTIMIZERS:
        fail("mask_optimizer", self.mask_optimizer, f"expected one of {list(MASK_OPTIMIZERS)}")
    if self.distribute not in distribute.STRATEGIES:
        fail("distribute", self.distribute, f"expected one of {list(distribute.STRATEGIES)}")
    if self.mixed_precision not in PRECISIONS:
        fail("mixed_precision", self.mixed_precision, f"expected one of {list(PRECISIONS)}")
    decay_epochs = list(self.lr_decay_epochs)
    if any(not 0 < e < self.epochs for e in decay_epochs) or decay_epochs != sorted(
            set(decay_epochs)):
        fail("lr_decay_epochs", ",".join(map(str, decay_epochs)),
             f"must be increasing epochs in 1..{self.epochs - 1} (--epochs)")
    if not (math.isfinite(self.lr_decay_factor) and 0 < self.lr_decay_factor <= 1):
        fail("lr_decay_factor", self.lr_decay_factor, "must be a number in (0, 1]")
    for name, allowed in (("weight_decay_mode", WEIGHT_DECAY_MODES),
                          ("reset", methods.CS_RESETS), ("input_scaling", data.SCALINGS)):
        if getattr(self, name) not in allowed:
            fail(name, getattr(self, name), f"expected one of {list(allowed)}")
    if self.prune_scope not in PRUNE_SCOPES:
        fail("prune_scope", self.prune_scope, f"expected one of {list(PRUNE_SCOPES)}")
    if not 0 < self.prune_fraction < 1:
        fail("prune_fraction", self.prune_fraction, "must be a fraction in (0, 1)")
    for name in ("prune_fraction_conv", "prune_fraction_dense", "prune_fraction_output"):
        if not 0 <= getattr(self, name) < 1:
            fail(name, getattr(self, name), "must be a fraction in (0, 1), or 0 for the default")
    if self.target_remaining:
        if not 0 < self.target_remaining < 1:
            fail("target_remaining", self.target_remaining, "must be a fraction in (0, 1), or 0")
        if self.method == "imp":
            fail("target_remaining", self.target_remaining,
                 "IMP sets sparsity with --prune_fraction and --rounds; use --method=cs or iss")
    if not (isinstance(self.steps_per_execution, int) and self.steps_per_execution >= 1):
        fail("steps_per_execution", self.steps_per_execution, "must be an integer >= 1")
    if not 0 <= self.target_start < 1:
        fail("target_start", self.target_start, "must be a fraction of the round in [0, 1)")
    if self.mask_scaling and self.method != "cs":
        fail("mask_scaling", True, "the 1/sigmoid(s0) scaling belongs to CS: use --method=cs")
    if self.supermask and self.method == "imp":
        fail("supermask", True, "the supermask setting learns a mask: use --method=cs or iss")
    if self.init_from and not os.path.isfile(self.init_from):
        fail("init_from", self.init_from, "no such file: give a model saved with model.save("
             "'name.keras')")
    if self.model not in models.available_models():
        fail("model", self.model, f"expected one of {models.available_models()}")
    if self.dataset not in data.available_datasets():
        fail("dataset", self.dataset, f"expected one of {data.available_datasets()}")
    if self.optimizer not in OPTIMIZERS:
        fail("optimizer", self.optimizer, f"expected one of {list(OPTIMIZERS)}")
    for name in ("rounds", "epochs", "batch_size"):
        if getattr(self, name) < 1:
            fail(name, getattr(self, name), "must be an integer >= 1")
    for name in ("ticket_epochs", "train_examples", "ticket_epoch", "validation_examples"):
        if getattr(self, name) < 0:
            fail(name, getattr(self, name), "must be an integer >= 0")
    for name in ("learning_rate",):
        value = getattr(self, name)
        if not (math.isfinite(value) and value > 0):
            fail(name, value, "must be a finite number > 0")
    if not (math.isfinite(self.mask_learning_rate) and self.mask_learning_rate >= 0):
        fail("mask_learning_rate", self.mask_learning_rate,
             "must be a finite number > 0, or 0 for the learning rate of w")
    for name in ("weight_decay", "momentum", "mask_penalty", "mask_momentum"):
        value = getattr(self, name)
        if not (math.isfinite(value) and value >= 0):
            fail(name, value, "must be a finite number >= 0")
    if not math.isfinite(self.mask_init):
        fail("mask_init", self.mask_init, "s0 must be a finite number")
    if self.method != "imp":
        # The mask starts at sigmoid(beta_0 * s0) (ISS: sigmoid(s0)); past |x| = 10 its
        # gradient is below 5e-5 of its peak and past ~17 exactly 0 in float32.
        scale = self.initial_temperature if self.method == "cs" else 1.0
        if math.isfinite(scale) and scale > 0 and abs(self.mask_init * scale) > MAX_MASK_LOGIT:
            fail("mask_init", self.mask_init,
                 f"the mask would start saturated (no gradient); s0 must lie in "
                 f"[-{MAX_MASK_LOGIT / scale:g}, {MAX_MASK_LOGIT / scale:g}] "
                 + ("(10 / --initial_temperature)" if self.method == "cs" else ""))
    if not (math.isfinite(self.initial_temperature) and self.initial_temperature > 0):
        fail("initial_temperature", self.initial_temperature, "must be a finite number > 0")
    if not (math.isfinite(self.final_temperature)
            and self.final_temperature > self.initial_temperature):
        fail("final_temperature", self.final_temperature,
             f"must be finite and greater than initial_temperature "
             f"({self.initial_temperature})")
    if self.rewind_epoch < -1 or self.rewind_epoch > self.epochs:
        fail("rewind_epoch", self.rewind_epoch,
             f"must be -1 (no rewinding) or an epoch in 0..{self.epochs} (--epochs)")
    if self.ticket_epoch > self.epochs:
        fail("ticket_epoch", self.ticket_epoch, f"must be an epoch in 0..{self.epochs} (--epochs)")
    if not self.output_dir:
        fail("output_dir", self.output_dir, "must name a directory")
