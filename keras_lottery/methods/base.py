"""`Method`, the base of every search method, and `Setting`, the settings a method declares.

A method owns every choice that is its own: its settings (with their help and checks;
`SearchConfig`, the flags of `apps.search`, the guide's table and the sweep derive from
them), its mask rule and layer arguments, the callbacks of its rounds, its round-end step,
where its ticket comes from, and its sweep space. Callers ask the method; nothing outside
`keras_lottery.methods` compares method names.
"""

import dataclasses
import math
from typing import Any, Callable

from keras_lottery.layers.costs import PENALTY_COSTS
from keras_lottery.layers.masked_layer import DEFAULT_MASK_INIT, official_mask_scale


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of a search: a field of `SearchConfig` and a flag of `apps.search`.

    Attributes:
        name: the field and flag name.
        default: its default (its type sets the flag's type; a tuple is a list flag).
        help: the one-line help of the flag.
        group: where `--helpfull` lists it: `method`, `schedule`, `data` or `run`.
        choices: the allowed values, for settings that take one of a fixed set (or a
            function that returns them, for registries that may grow).
        check: `check(value) -> str or None`: what is allowed, when `value` is not.
        owner_only: a value other than the default is an error under another method.
    """

    name: str
    default: Any
    help: str
    group: str = "method"
    choices: Any = ()
    check: Callable = None
    owner_only: bool = False

    def problem(self, value):
        """What is allowed, when `value` is not; None when it is."""
        choices = self.allowed()
        if choices and value not in choices:
            return f"expected one of {list(choices)}"
        return self.check(value) if self.check else None

    def allowed(self):
        """The allowed values (a tuple; empty when any value of the type is)."""
        return tuple(self.choices() if callable(self.choices) else self.choices)


def _number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def fraction(zero_allowed=False):
    """A check: a fraction in (0, 1) (or 0, which turns the setting off)."""
    def check(value):
        if _number(value) and (0 < value < 1 or (zero_allowed and value == 0)):
            return None
        return "must be a fraction in (0, 1)" + (", or 0 for the default" if zero_allowed else "")
    return check


def at_least(minimum, integer=False, strict=False):
    """A check: a finite number (or integer) >= `minimum` (> with `strict`)."""
    def check(value):
        kind = "an integer" if integer else "a finite number"
        ok = (isinstance(value, int) if integer else _number(value)) and (
            value > minimum if strict else value >= minimum)
        return None if ok else f"must be {kind} {'>' if strict else '>='} {minimum:g}"
    return check


def _finite_s0(value):
    return None if _number(value) else "s0 must be a finite number"


def _target(value):
    return None if _number(value) and (0 < value < 1 or value == 0) else (
        "must be a fraction in (0, 1), or 0")


def _start(value):
    return None if _number(value) and 0 <= value < 1 else (
        "must be a fraction of the round in [0, 1)")


# The settings of the methods that learn a mask (CS and ISS read them; pruning does not).
MASK_INIT = Setting("mask_init", DEFAULT_MASK_INIT, "s0: initial value of the mask logits s.",
                    check=_finite_s0)
MASK_PENALTY = Setting("mask_penalty", 1e-6,
                       "lambda: weight of the L1 penalty ||sigmoid(beta*s)||_1.",
                       check=at_least(0))
PENALTY_COST = Setting(
    "penalty_cost", "weights",
    "What the penalty counts per mask group: weights (the paper: lambda per weight), macs "
    "(multiply-accumulates: each layer's lambda is scaled by how often it applies its kernel "
    "per example, so that the total at full density is unchanged; an extension that makes "
    "unit masks prune what costs time), or deployed_macs / deployed_parameters (what removing "
    "the group takes out of the deployed network: a unit with the input rows of the layers "
    "that read it, a depthwise channel with its expand unit and project row).",
    choices=PENALTY_COSTS)
TARGET_REMAINING = Setting(
    "target_remaining", 0.0,
    "The last round's ticket keeps exactly this fraction of the weights (e.g. 0.05; round r "
    "of R aims at target**(r/R)); 0 turns it off.", check=_target)
TARGET_START = Setting(
    "target_start", 0.5,
    "Fraction of each round trained as plain CS before --target_remaining starts re-centring "
    "the logits s, or a budget (--target_macs, --target_parameters) starts steering lambda.",
    check=_start)
BUDGET_RATE = Setting(
    "budget_rate", 0.05,
    "With a budget: the step of log(mu) every 20 steps (at least 50 times a round), mu the "
    "multiplier of lambda that "
    "steers the ticket toward the budget (0: no steering, only the cut after the last step).",
    check=at_least(0))
LEARNED_MASK_SETTINGS = (MASK_INIT, MASK_PENALTY, PENALTY_COST, TARGET_REMAINING, TARGET_START,
                         BUDGET_RATE)


class Method:
    """Every method-specific choice of a search: settings, mask rule, layer arguments,
    callbacks of a round, round-end step and where the ticket comes from.

    The lottery runner, `RoundManager`, `sparsify` and custom loops ask the method
    instead of comparing names. A subclass sets the class attributes and implements
    `round_end`; `from_config` builds it from a `SearchConfig`.
    """

    name = None
    #: One line for `--method`'s help.
    description = ""
    mask_rule = None
    #: `s0` when the user gives none (`sparsify`): every weight kept at the start.
    default_mask_init = 1.0
    #: Whether the loss holds `lambda * ||m||_1` (`mask_penalty`).
    uses_penalty = True
    #: Whether the ticket is read after `round_end` (pruning) rather than before it.
    ticket_after_round_end = False
    #: Whether its masks may be scaled by `1/sigmoid(s0)` (`mask_scaling`, CS's).
    scales_mask = False
    #: Whether the method can learn a mask on frozen weights (`--supermask`).
    learns_supermask = True
    #: Whether `--target_remaining` can steer its logits.
    takes_target_remaining = True
    #: The settings this method reads besides the shared ones (`Setting`s).
    settings = ()
    #: Whether a batch hook sets the layers before every step off TensorFlow (CS's `beta`):
    #: there each call into the compiled step runs one step.
    anneals_per_step = False
    #: Settings applied when the search starts from a trained model (`--init_from`).
    trained_model_settings = {}
    #: The knobs a sweep varies by default: `(name, kind, keras-tuner arguments)`.
    sweep_space = ()
    #: The setting its supermask figure labels points with.
    supermask_knob = "mask_penalty"

    @classmethod
    def settings_type(cls):
        """The frozen dataclass of this method's own settings (one field per `Setting` of
        `settings`, its default the setting's), made once per class."""
        made = cls.__dict__.get("_settings_type")
        if made is None:
            made = dataclasses.make_dataclass(
                f"{cls.__name__}Settings",
                [(s.name, type(s.default), dataclasses.field(default=s.default))
                 for s in cls.settings], frozen=True, namespace={"__module__": cls.__module__})
            cls._settings_type = made
        return made

    @classmethod
    def settings_of(cls, config):
        """This method's own settings out of `config` (a `SearchConfig` or any object with
        those attributes), frozen: all a method is built from."""
        return cls.settings_type()(**{s.name: getattr(config, s.name) for s in cls.settings})

    @classmethod
    def from_settings(cls, settings):
        """The method its own frozen settings (`settings_of`) describe (by default: none)."""
        del settings
        return cls()

    @classmethod
    def from_config(cls, config):
        """The method a `SearchConfig` describes: built from its own settings only."""
        return cls.from_settings(cls.settings_of(config))

    @classmethod
    def unused_settings(cls, all_settings):
        """The methods' settings (`all_settings`: `{name: (Setting, readers)}`, as
        `methods.settings()` gives them) that this method does not read: setting them changes
        nothing (`apps.search` names them in a warning)."""
        return [name for name, (_, readers) in all_settings.items() if cls.name not in readers]

    @classmethod
    def config_problems(cls, settings):
        """`(setting, value, what is allowed)` for own `settings` (`settings_of`) that do not
        fit together."""
        del settings
        return []

    @classmethod
    def title(cls, supermask=False):
        """The method's name in tables and legends."""
        del supermask
        return cls.name.upper()

    def layer_arguments(self, mask_init=None, mask_penalty=0.0, mask_scaling=False,
                        mask_granularity="weight"):
        """The masked layers' mask arguments (`mask_rule`, `mask_init` = s0, `mask_penalty`,
        `mask_granularity`, and `mask_scale`: `1/sigmoid(s0)` with `mask_scaling`, the
        official CS code's, else 1)."""
        if mask_scaling and not self.scales_mask:
            raise ValueError(f"mask_scaling is CS's (1/sigmoid(s0)); method {self.name!r} "
                             "starts from a binary mask and needs none.")
        mask_init = self.default_mask_init if mask_init is None else float(mask_init)
        return {"mask_rule": self.mask_rule, "mask_init": mask_init,
                "mask_penalty": float(mask_penalty) if self.uses_penalty else 0.0,
                "mask_scale": official_mask_scale(mask_init) if mask_scaling else 1.0,
                "mask_granularity": mask_granularity}

    def round_callbacks(self):
        """Keras callbacks that run during every round of this method (besides the runner's)."""
        return []

    def round_end(self, layers):
        """The method's step after a round, on the masked `layers` (in place)."""
        raise NotImplementedError

    def evaluate_searched(self, config, model, evaluate):
        """Extra numbers for round r's record, measured on the searched `model` before its
        round end; `evaluate(masks)` gives the test accuracy of `model`'s weights under
        `{layer name: bool mask}`. By default none."""
        del config, model, evaluate
        return {}

    def reuses_next_round(self, config):
        """Whether ticket r's retraining is round r+1's training (so is not run again)."""
        del config
        return False
