"""`SearchConfig`: every knob of a ticket search, checked up front.

Its fields are the shared settings (`keras_lottery.search.settings.SHARED`) followed by
every method's own (`keras_lottery.methods.settings()`), written out below so that readers
and tools see them; a setting's default, help and check live in its `Setting` alone.
Each bad value raises `ConfigError` with one line that names the value and what is
allowed, before any data is loaded or any file written.
"""

import dataclasses
import os

from keras_lottery import methods
from keras_lottery.search import distribute
from keras_lottery.search.settings import SHARED
from keras_lottery.tickets.budgets import BudgetTarget


class ConfigError(ValueError):
    """A search setting that is out of range or unknown."""


def _all_settings():
    found = {setting.name: setting for setting in SHARED}
    for name, (setting, readers) in methods.settings().items():
        if name in found:
            raise TypeError(f"method {readers[0]!r} declares {name!r}, a shared setting.")
        found[name] = setting
    return found


#: Every setting by name: the shared ones, then the methods' own.
SETTINGS = _all_settings()
#: The help text of every setting (the flags' help).
HELP = {name: setting.help for name, setting in SETTINGS.items()}
#: What each setting is about: `apps.search --helpfull` lists the flags in these groups.
GROUPS = {group: tuple(name for name, s in SETTINGS.items() if s.group == group)
          for group in ("method", "schedule", "data", "run")}


def choices():
    """The allowed values of every setting that takes one of a fixed set (flags as enums)."""
    return {name: setting.allowed() for name, setting in SETTINGS.items() if setting.choices}


def settings_difference(old, new, ignore=()):
    """The first settings that differ between two `to_dict()`s, as flags (`--k=new (was old)`),
    or "" when they agree on every setting not in `ignore`. A setting `old` lacks (it was
    added to `SearchConfig` after `old` was written) counts as its default there."""
    defaults = SearchConfig().to_dict()
    old = {**{k: defaults[k] for k in new if k not in old and k in defaults}, **old}
    changed = sorted(k for k in set(old) | set(new)
                     if k not in ignore and old.get(k) != new.get(k))
    return ", ".join(f"--{k}={new.get(k)!r} (was {old.get(k)!r})" for k in changed[:3])


class _SearchConfigMethods:
    """What `SearchConfig` does besides holding the settings."""

    def __post_init__(self):
        # A given model starts at its own outputs (CS: masks scaled by 1/sigmoid(s0)).
        if self.init_from:  # the caller may set one back (apps.search: a flag given)
            for name, value in self.trained_model_overrides().items():
                setattr(self, name, value)

    def validate(self):
        """Raises `ConfigError` on the first bad setting (`check_settings`); returns self."""
        check_settings(self)
        return self

    def to_dict(self):
        settings = dataclasses.asdict(self)
        for name, value in settings.items():
            if isinstance(value, tuple):
                settings[name] = list(value)
        return settings

    @classmethod
    def from_dict(cls, settings):
        """The config a `to_dict()` (a results.json's `flags`) describes; keys that are not
        settings are ignored, settings it lacks take their defaults."""
        known = {k: v for k, v in settings.items() if k in SETTINGS}
        for name, value in known.items():
            if isinstance(SETTINGS[name].default, tuple):
                known[name] = tuple(value)
        config = cls(**known)
        for name in set(known) & set(config.trained_model_overrides()):
            setattr(config, name, known[name])  # what the run recorded, not the override
        return config

    def trained_model_overrides(self):
        """The settings `--init_from` turns on for this method (`{name: value}`)."""
        if self.method not in methods.METHODS:
            return {}
        return dict(methods.get(self.method).trained_model_settings)

    def for_dry_run(self):
        """The settings a `--dry_run` uses: one short round, no files kept."""
        return dataclasses.replace(
            self, rounds=1, epochs=1, lr_decay_epochs=(), dense_baseline=False,
            ticket_epochs=min(self.ticket_epochs, 1), ticket_epoch=min(self.ticket_epoch, 1),
            rewind_epoch=min(self.rewind_epoch, 1))

    @classmethod
    def field_names(cls):
        return list(SETTINGS)

    @classmethod
    def help_text(cls, name):
        """The one-line help of setting `name` (its flag's help)."""
        return SETTINGS[name].help


def _default(name):
    """A field whose default is setting `name`'s (its one default: `SETTINGS`)."""
    return dataclasses.field(default=SETTINGS[name].default)


@dataclasses.dataclass
class SearchConfig(_SearchConfigMethods):
    """A ticket search: one field per setting, each declared once with its default, help and
    check in `SETTINGS` (the shared ones in `search.settings`, each method's own in its
    module; `HELP` has the help). Paper symbols: `s0` = mask_init, `lambda` = mask_penalty,
    `beta_0` / `beta_T` = initial / final_temperature, `k` = rewind_epoch. A method is built
    from its own settings only (`keras_lottery.methods.get(name).settings_of(config)`, a
    frozen dataclass); tests/test_flagfiles.py checks that these fields are `SETTINGS`."""

    # Shared by every method (keras_lottery.search.settings.SHARED), by group.
    # -- method
    method: str = _default("method")
    supermask: bool = _default("supermask")
    init_from: str = _default("init_from")
    mask_granularity: str = _default("mask_granularity")
    unmasked_layers: tuple = _default("unmasked_layers")
    target_macs: float = _default("target_macs")
    target_parameters: float = _default("target_parameters")
    min_units: int = _default("min_units")
    min_unit_fraction: float = _default("min_unit_fraction")
    unit_multiple: int = _default("unit_multiple")
    # -- data
    model: str = _default("model")
    dataset: str = _default("dataset")
    data_dir: str = _default("data_dir")
    train_examples: int = _default("train_examples")
    validation_examples: int = _default("validation_examples")
    augment: bool = _default("augment")
    input_scaling: str = _default("input_scaling")
    image_size: int = _default("image_size")
    width_multiplier: float = _default("width_multiplier")
    # -- schedule
    rounds: int = _default("rounds")
    epochs: int = _default("epochs")
    batch_size: int = _default("batch_size")
    optimizer: str = _default("optimizer")
    learning_rate: float = _default("learning_rate")
    momentum: float = _default("momentum")
    nesterov: bool = _default("nesterov")
    weight_decay: float = _default("weight_decay")
    weight_decay_mode: str = _default("weight_decay_mode")
    keep_optimizer_state: bool = _default("keep_optimizer_state")
    lr_decay_epochs: tuple = _default("lr_decay_epochs")
    lr_decay_factor: float = _default("lr_decay_factor")
    mask_optimizer: str = _default("mask_optimizer")
    mask_learning_rate: float = _default("mask_learning_rate")
    mask_momentum: float = _default("mask_momentum")
    rewind_epoch: int = _default("rewind_epoch")
    ticket_epoch: int = _default("ticket_epoch")
    ticket_epochs: int = _default("ticket_epochs")
    dense_baseline: bool = _default("dense_baseline")
    # -- run
    deployment: bool = _default("deployment")
    latency_repeats: int = _default("latency_repeats")
    latency_batch_sizes: tuple = _default("latency_batch_sizes")
    seed: int = _default("seed")
    deterministic: bool = _default("deterministic")
    jit_compile: bool = _default("jit_compile")
    steps_per_execution: int = _default("steps_per_execution")
    distribute: str = _default("distribute")
    mixed_precision: str = _default("mixed_precision")
    dry_run: bool = _default("dry_run")
    overwrite: bool = _default("overwrite")
    output_dir: str = _default("output_dir")
    verbose: int = _default("verbose")
    # The methods' own (keras_lottery.methods: each method reads only those it declares).
    mask_init: float = _default("mask_init")  # cs/iss
    mask_penalty: float = _default("mask_penalty")  # cs/iss
    penalty_cost: str = _default("penalty_cost")  # cs/iss
    target_remaining: float = _default("target_remaining")  # cs/iss
    target_start: float = _default("target_start")  # cs/iss
    budget_rate: float = _default("budget_rate")  # cs/iss
    reset: str = _default("reset")  # cs
    mask_scaling: bool = _default("mask_scaling")  # cs
    initial_temperature: float = _default("initial_temperature")  # cs
    final_temperature: float = _default("final_temperature")  # cs
    temperature_per_epoch: bool = _default("temperature_per_epoch")  # cs
    official_temperature: bool = _default("official_temperature")  # cs
    ss_eval: str = _default("ss_eval")  # iss
    ss_eval_samples: int = _default("ss_eval_samples")  # iss
    prune_fraction: float = _default("prune_fraction")  # imp/random
    prune_scope: str = _default("prune_scope")  # imp/random
    reuse_next_round: bool = _default("reuse_next_round")  # imp/random
    prune_fraction_conv: float = _default("prune_fraction_conv")  # imp
    prune_fraction_dense: float = _default("prune_fraction_dense")  # imp
    prune_fraction_output: float = _default("prune_fraction_output")  # imp


def _cross_problems(config):
    """`(setting, value, what is allowed)` for settings that are bad given the others."""
    method = methods.get(config.method)
    problems = []
    decay_epochs = list(config.lr_decay_epochs)
    if any(not 0 < e < config.epochs for e in decay_epochs) or decay_epochs != sorted(
            set(decay_epochs)):
        problems.append(("lr_decay_epochs", ",".join(map(str, decay_epochs)),
                         f"must be increasing epochs in 1..{config.epochs - 1} (--epochs)"))
    refused = distribute.backend_problem(config.distribute)
    if refused:
        problems.append(("distribute", config.distribute, refused))
    if config.target_remaining and not method.takes_target_remaining:
        problems.append(("target_remaining", config.target_remaining,
                         f"--method={method.name} sets sparsity with --prune_fraction and "
                         "--rounds; use a method that learns its mask"))
    budgets = [(n, getattr(config, n)) for n in ("target_macs", "target_parameters")
               if getattr(config, n)]
    if len(budgets) > 1:
        problems.append(("target_parameters", config.target_parameters,
                         "give one budget: --target_macs or --target_parameters"))
    if budgets and config.target_remaining:
        problems.append((budgets[0][0], budgets[0][1], "--target_remaining already sets the "
                         "ticket's size; give one of them"))
    if config.penalty_cost != "weights" and not method.uses_penalty:
        problems.append(("penalty_cost", config.penalty_cost, f"--method={method.name} has "
                         "no penalty to weigh; leave it at 'weights'"))
    if config.supermask and not method.learns_supermask:
        problems.append(("supermask", True, "the supermask setting learns a mask: use a "
                         "method that learns one"))
    for name, (setting, readers) in methods.settings().items():
        value = getattr(config, name)
        if setting.owner_only and config.method not in readers and value != setting.default:
            problems.append((name, value, f"it is a setting of --method={'/'.join(readers)}"))
    if config.init_from and not os.path.isfile(config.init_from):
        problems.append(("init_from", config.init_from, "no such file: give a model saved with "
                         "model.save('name.keras')"))
    if config.rewind_epoch > config.epochs:
        problems.append(("rewind_epoch", config.rewind_epoch, "must be -1 (no rewinding) or an "
                         f"epoch in 0..{config.epochs} (--epochs)"))
    if config.ticket_epoch > config.epochs:
        problems.append(("ticket_epoch", config.ticket_epoch,
                         f"must be an epoch in 0..{config.epochs} (--epochs)"))
    return problems + method.config_problems(method.settings_of(config))


def budget_of(config):
    """The search's `BudgetTarget` (`--target_macs` or `--target_parameters`), or None."""
    for kind, fraction in (("macs", config.target_macs),
                           ("parameters", config.target_parameters)):
        if fraction:
            return BudgetTarget(kind, float(fraction), config.rounds, config.min_units,
                                config.min_unit_fraction, config.unit_multiple)
    return None


def check_settings(config):
    """Raises `ConfigError` naming the first bad setting of `config` (a `SearchConfig`): each
    setting's own check, then those that depend on other settings and on the method."""
    for name, setting in SETTINGS.items():
        problem = setting.problem(getattr(config, name))
        if problem:
            raise ConfigError(f"--{name}={getattr(config, name)!r} is invalid: {problem}.")
    for name, value, allowed in _cross_problems(config):
        raise ConfigError(f"--{name}={value!r} is invalid: {allowed}.")

