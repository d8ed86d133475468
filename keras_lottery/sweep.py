"""Sweeps over a method's knobs with keras-tuner; each trial is a whole ticket search.

keras-tuner is the engine: its oracle picks the settings, its project
directory keeps the trials (a sweep run again continues where it stopped), and
its distributed mode (`KERASTUNER_TUNER_ID`, `KERASTUNER_ORACLE_IP`,
`KERASTUNER_ORACLE_PORT`) spreads trials over machines. Each trial writes a
normal run directory (`results.json`, tickets, TensorBoard) and an HParams
summary, so TensorBoard shows the trials side by side. A trial that fails
(divergence, a bad combination) is recorded as failed and the sweep goes on.
"""

import dataclasses
import json
import os

import keras
import keras_tuner as kt

from keras_lottery import io_utils, methods, search
from keras_lottery.callbacks import TrainingDiverged
from keras_lottery.report import pareto_envelope
from keras_lottery.search.config import ConfigError, SearchConfig, settings_difference
from keras_lottery.search.runner import RESUMABLE_CHANGES

#: Trials are ranked on the ticket's validation accuracy, never on test data; the test
#: accuracy is recorded beside it.
OBJECTIVE = kt.Objective("ticket_validation_accuracy", direction="max")
METRICS = ("ticket_validation_accuracy", "ticket_accuracy", "remaining")


#: Budgets any method can sweep (`--sweep=target_macs=0.5|0.25|0.125`): one ticket per budget.
BUDGET_KNOBS = (("target_macs", "choice", dict(values=[0.5, 0.25, 0.125])),
                ("target_parameters", "choice", dict(values=[0.25, 0.1])))


def _selection_accuracy(record):
    """A round's validation accuracy for model selection: its ticket's, or (not retrained) its
    searched network's."""
    value = record.get("ticket_validation_accuracy")
    return record.get("search_validation_accuracy") if value is None else value


def _number(text, item):
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"--sweep={item!r} is invalid: {text!r} is not a number.") from None


def parse_space(method, text=""):
    """The knobs a sweep varies: the method's `sweep_space`, or those `text` names, each with its
    default range or the range given. Every other setting keeps the base flags' value.

    `text` is comma-separated items: `name` (the default range), `name=LOW:HIGH`
    (uniform; `name=LOW:HIGH:log` log-uniform) or `name=A|B|C` (one of the values).
    E.g. the paper's Conv-6 CS sweep of s0 at a fixed lambda: `mask_init=-0.03:0.03`; tickets
    to several budgets: `target_macs=0.5|0.25|0.125` (every method; `BUDGET_KNOBS`).
    """
    defaults = {name: (kind, arguments)
                for name, kind, arguments in methods.get(method).sweep_space}
    defaults.update({name: (kind, arguments) for name, kind, arguments in BUDGET_KNOBS})
    if not text:
        return list(methods.get(method).sweep_space)
    space = []
    for item in text.split(","):
        name, _, given = item.strip().partition("=")
        if name not in defaults:
            raise ConfigError(f"--sweep={item!r} is invalid: --method={method} sweeps "
                              f"{sorted(defaults)}.")
        kind, arguments = defaults[name]
        if "|" in given:
            kind, arguments = "choice", dict(values=[_number(v, item) for v in given.split("|")])
        elif given:
            bounds = given.split(":")
            if len(bounds) not in (2, 3) or (len(bounds) == 3 and bounds[2] != "log"):
                raise ConfigError(f"--sweep={item!r} is invalid: expected {name}=LOW:HIGH, "
                                  f"{name}=LOW:HIGH:log or {name}=A|B|C.")
            low, high = _number(bounds[0], item), _number(bounds[1], item)
            if not low < high or (len(bounds) == 3 and low <= 0):
                raise ConfigError(f"--sweep={item!r} is invalid: LOW must be below HIGH "
                                  "(and above 0 for log).")
            kind = "int" if kind == "int" else "float"
            arguments = dict(min_value=int(low) if kind == "int" else low,
                             max_value=int(high) if kind == "int" else high)
            if len(bounds) == 3:
                arguments["sampling"] = "log"
        space.append((name, kind, arguments))
    if len({name for name, _, _ in space}) != len(space):
        raise ConfigError(f"--sweep={text!r} is invalid: a knob appears twice.")
    return space


def define_space(hp, space):
    """Declares the knobs of `space` (from `parse_space`) on `hp` and returns their values."""
    values = {}
    for name, kind, arguments in space:
        if kind == "float":
            values[name] = hp.Float(name, **arguments)
        elif kind == "int":
            values[name] = hp.Int(name, **arguments)
        else:
            values[name] = hp.Choice(name, **arguments)
    return values


class TicketSearchTuner(kt.engine.base_tuner.BaseTuner):
    """A keras-tuner tuner whose trials are `keras_lottery.search.run` calls."""

    def __init__(self, base_config, oracle, space, **kwargs):
        super().__init__(oracle=oracle, **kwargs)
        self.base_config = base_config
        self.space = space

    def run_trial(self, trial, *args, **kwargs):
        values = define_space(trial.hyperparameters, self.space)
        output_dir = os.path.join(self.project_dir, f"trial_{trial.trial_id}", "run")
        config = dataclasses.replace(self.base_config, output_dir=output_dir, **values)
        print(f"trial {trial.trial_id} on {self.tuner_id}: "
              + ", ".join(f"{name}={value:.4g}" for name, value in values.items()), flush=True)
        try:
            results = search.run(config)
        except (TrainingDiverged, ConfigError, ValueError) as error:
            raise kt.errors.FailedTrialError(f"trial {trial.trial_id} failed: {error}") from None
        finally:
            # Each trial builds its own models: free the last one's graphs and variables
            # (a 5-trial LeNet sweep had reached 4 GiB of RSS by its fifth trial).
            keras.backend.clear_session(free_memory=True)
        last = results["rounds"][-1]
        test = last["ticket_accuracy"]
        metrics = {"ticket_validation_accuracy": float(_selection_accuracy(last)),
                   "ticket_accuracy": float(last["search_accuracy"] if test is None else test),
                   "remaining": float(last["remaining"])}
        # Each trial's search wrote its own HParams session with every flag and its results
        # (`trial_<id>/run/tensorboard/summary`): `tensorboard --logdir` on the sweep's
        # directory ranks the trials in one table.
        return metrics

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        # keras-tuner writes the tuner's file only when a trial ends, and reloads a project
        # only when that file exists: without this, a sweep killed in its first trial started
        # over with new values and collided with the trial's own run directory.
        self.save()

    def save_model(self, trial_id, model, step=0):
        """Nothing to do: every trial's run directory already holds its tickets."""

    def load_model(self, trial):
        raise NotImplementedError("Load a trial's ticket from trial_<id>/run/ticket/ticket.keras.")


def make_oracle(kind, max_trials, seed, space):
    """The oracle, with the method's space declared up front.

    Declared before the first trial, the space is the same in every process of a
    distributed sweep: a chief oracle that learnt it only from a worker's first
    trial answered a second worker's request with an empty space, which
    keras-tuner reads as "exhausted" (that worker stopped at once).
    """
    hyperparameters = kt.HyperParameters()
    define_space(hyperparameters, space)
    # A failed trial never stops the sweep: allow as many failures as trials.
    options = dict(max_trials=max_trials, seed=seed, max_consecutive_failed_trials=max_trials,
                   hyperparameters=hyperparameters)
    if kind == "bayesian":
        return kt.oracles.BayesianOptimizationOracle(OBJECTIVE, **options)
    if kind == "random":
        return kt.oracles.RandomSearchOracle(OBJECTIVE, **options)
    raise ConfigError(f"--tuner={kind!r} is invalid: expected 'random' or 'bayesian'.")


def pareto_front(sweep_dir):
    """Every finished round of every trial, and their Pareto front on (remaining, validation
    accuracy); each point also carries its test accuracy, which the front never looks at."""
    points = []
    for name in sorted(os.listdir(sweep_dir)):
        path = os.path.join(sweep_dir, name, "run", search.RESULTS_FILE)
        if not name.startswith("trial_") or not os.path.exists(path):
            continue
        with open(path) as handle:
            results = json.load(handle)
        for record in results["rounds"]:
            if record.get("ticket_accuracy") is not None and _selection_accuracy(record):
                points.append({"trial": name, "round": record["round"],
                               "remaining": record["remaining"],
                               "validation_accuracy": _selection_accuracy(record),
                               "ticket_accuracy": record["ticket_accuracy"]})
    pairs = [(p["remaining"], p["validation_accuracy"]) for p in points]
    front_pairs = set(pareto_envelope(pairs))
    front = [p for p, pair in zip(points, pairs) if pair in front_pairs]
    return points, sorted(front, key=lambda p: p["remaining"])


def is_distributed_worker():
    """Whether this process runs trials for a chief oracle elsewhere (keras-tuner's variables)."""
    return ("KERASTUNER_ORACLE_IP" in os.environ
            and "chief" not in os.environ.get("KERASTUNER_TUNER_ID", ""))


#: Base settings a resumed sweep may change: those a resumed run may change, but `rounds`
#: (a sweep's trials all have the base's rounds, or the space's).
_RESUMABLE = tuple(k for k in RESUMABLE_CHANGES if k != "rounds")


def _pin_base_settings(project_dir, base_config, overwrite, space):
    """Records the sweep's base settings and space at its start; refuses to resume it with
    others."""
    path = os.path.join(project_dir, "base_settings.json")
    current = {k: v for k, v in base_config.to_dict().items() if k not in _RESUMABLE}
    current["sweep"] = [[name, kind, arguments] for name, kind, arguments in space]
    if os.path.exists(path) and not overwrite:
        with open(path) as handle:
            pinned = json.load(handle)
        # A sweep pinned before --sweep existed varied every knob of its method.
        default_space = [[n, k, a] for n, k, a in methods.get(base_config.method).sweep_space]
        pinned.setdefault("sweep", json.loads(json.dumps(default_space)))
        current["sweep"] = json.loads(json.dumps(current["sweep"]))
        details = settings_difference(pinned, current)
        if details:
            raise ConfigError(
                f"--sweep_dir={project_dir!r} holds a sweep with other settings: {details}; "
                "pass --overwrite_sweep to start it again or choose another --sweep_dir.")
        return
    io_utils.write_json(path, current)


def run_sweep(base_config: SearchConfig, sweep_dir, max_trials=8, tuner="random", seed=0,
              overwrite=False, sweep=""):
    """Runs (or continues) a sweep; returns `{"trials": [...], "pareto_front": [...]}`.

    `sweep` names the knobs to vary and their ranges (`parse_space`); by default every
    knob of the method's `sweep_space`. The others keep `base_config`'s values.

    In keras-tuner's distributed mode the chief (`KERASTUNER_TUNER_ID=chief`)
    serves the oracle until every trial is done and then writes `sweep.json`;
    a worker runs trials and returns None.
    """
    base_config.validate()
    if not base_config.validation_examples:
        raise ConfigError("--validation_examples=0 is invalid for a sweep: trials are ranked on "
                          "validation accuracy (never on test data); hold some images out.")
    if not methods.get(base_config.method).sweep_space:
        raise ConfigError(f"--method={base_config.method!r} has no sweep space.")
    space = parse_space(base_config.method, sweep)
    directory, project = os.path.split(os.path.abspath(sweep_dir))
    _pin_base_settings(os.path.join(directory, project), base_config, overwrite, space)
    ticket_tuner = TicketSearchTuner(
        base_config, make_oracle(tuner, max_trials, seed, space), space, directory=directory,
        project_name=project, overwrite=overwrite)
    ticket_tuner.search()
    if is_distributed_worker():
        return None
    trials = []
    for trial in ticket_tuner.oracle.trials.values():
        entry = {"trial": trial.trial_id, "status": trial.status,
                 "hyperparameters": trial.hyperparameters.values}
        for name in METRICS:
            if trial.metrics.exists(name):
                entry[name] = trial.metrics.get_last_value(name)
        trials.append(entry)
    points, front = pareto_front(ticket_tuner.project_dir)
    summary = {"trials": sorted(trials, key=lambda t: t["trial"]), "points": points,
               "pareto_front": front}
    io_utils.write_json(os.path.join(ticket_tuner.project_dir, "sweep.json"), summary)
    return summary
