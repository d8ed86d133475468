"""The lottery runner: build model -> one `fit` per round -> ticket -> retrain -> results.

`run(config)` performs a whole ticket search and writes into `output_dir`:
- `results.json`: the settings and one record per finished round (written
  atomically after every round),
- `tickets/round_<r>.npz`: the ticket masks of every round,
- `ticket/`: the last round's retrained ticket, exported (`ticket.keras`
  stripped to a plain Keras model, `masks.npz`, `report.json` with sizes),
- `tensorboard/`: one run per round (`round_<r>`), per ticket retraining
  (`round_<r>_ticket`) and for the dense baseline (`dense`).
"""

import json
import os
import tempfile
import time

import keras
import numpy as np
import tensorflow as tf

from keras_lottery import callbacks as cb
from keras_lottery import compat, data, distribute, io_utils, methods, models, optimizers, tickets
from keras_lottery import weights as weights_lib
from keras_lottery.config import ConfigError, SearchConfig
from keras_lottery.layers import masked_layers

RESULTS_FILE = "results.json"


def _base_optimizer(kind, learning_rate, momentum, nesterov, weight_decay):
    if kind == "sgd":
        return optimizers.FusedSGD(learning_rate, momentum=momentum, nesterov=nesterov,
                                   weight_decay=weight_decay or None)
    return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay or None)


def learning_rate_schedule(config, steps_per_epoch):
    """The learning rate of `w`: constant, or piecewise decayed at `lr_decay_epochs`.

    The schedule counts the optimizer's steps, which restart every round
    (`RoundManager` resets the optimizer), so each round follows it from the start.
    """
    if not config.lr_decay_epochs:
        return config.learning_rate
    boundaries = [int(epoch * steps_per_epoch) for epoch in config.lr_decay_epochs]
    values = [config.learning_rate * config.lr_decay_factor ** i
              for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def make_optimizer(config, steps_per_epoch=None):
    """The optimizer of `w` and `s`; weight decay never touches `s` (`mask_logits`).

    With `mask_optimizer` or `mask_learning_rate` set, `s` gets its own
    optimizer (constant learning rate, no weight decay) through `MaskOptimizer`.
    """
    learning_rate = config.learning_rate
    if steps_per_epoch:
        learning_rate = learning_rate_schedule(config, steps_per_epoch)
    weights_optimizer = _base_optimizer(config.optimizer, learning_rate,
                                        config.momentum, config.nesterov, config.weight_decay)
    if config.weight_decay:
        weights_optimizer.exclude_from_weight_decay(var_names=["mask_logits", "temperature"])
    if config.mask_optimizer == "same" and not config.mask_learning_rate:
        return weights_optimizer
    kind = config.optimizer if config.mask_optimizer == "same" else config.mask_optimizer
    momentum = config.momentum if config.mask_optimizer == "same" else config.mask_momentum
    mask_optimizer = _base_optimizer(kind, config.mask_learning_rate or config.learning_rate,
                                     momentum, config.nesterov and momentum > 0, 0.0)
    return optimizers.MaskOptimizer(weights_optimizer, mask_optimizer)


def make_method(config, model):
    """The `keras_lottery.methods.Method` of `config` (IMP rates resolved per layer of `model`)."""
    if config.method == "cs":
        return methods.ContinuousSparsification(config.initial_temperature)
    if config.method == "iss":
        return methods.IterativeStochasticSparsification()
    layers = masked_layers(model)
    dense_rate = config.prune_fraction_dense or config.prune_fraction
    fractions = {}
    for layer in layers:
        is_conv = isinstance(layer, keras.layers.Conv2D)
        fractions[layer.name] = (config.prune_fraction_conv or config.prune_fraction) if is_conv \
            else dense_rate
    if layers and config.prune_fraction_output:
        fractions[layers[-1].name] = config.prune_fraction_output
    return methods.IterativeMagnitudePruning(config.prune_fraction, config.prune_scope,
                                             layer_fractions=fractions)


def build_model(config, input_shape, num_classes):
    """The search model: masked layers with the method's mask rule (IMP starts dense)."""
    method_class = methods.METHODS[config.method]
    imp = config.method == "imp"
    model = models.build(config.model, input_shape, num_classes,
                         unmasked=config.unmasked_layers, mask_rule=method_class.mask_rule,
                         mask_init=1.0 if imp else config.mask_init,
                         mask_penalty=0.0 if imp else config.mask_penalty)
    if config.supermask:
        weights_lib.freeze_weights(model)
    return model


def execution_steps(steps_per_epoch, most):
    """Steps per call into the compiled step: the largest divisor of `steps_per_epoch`
    that is at most `most`, so that no call runs across an epoch's end."""
    return max(k for k in range(1, max(1, min(most, steps_per_epoch)) + 1)
               if steps_per_epoch % k == 0)


def compile_model(model, config, steps_per_epoch=None, steps_per_execution=None):
    """Compiles `model` for a search: SGD/Adam from `config`, cross-entropy, accuracy."""
    model.compile(
        optimizer=make_optimizer(config, steps_per_epoch),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[
            keras.metrics.SparseCategoricalAccuracy(name="accuracy"),
            keras.metrics.SparseCategoricalCrossentropy(from_logits=True, name="task_loss"),
        ],
        jit_compile=config.jit_compile,
        steps_per_execution=steps_per_execution or config.steps_per_execution,
    )
    return distribute.prepare_model(model)


class _EvaluateBeforeReset(keras.callbacks.Callback):
    """Evaluates the searched network at the end of a round, before `RoundManager` resets it."""

    def __init__(self, dataset, steps=None):
        super().__init__()
        self.dataset = dataset
        self.steps = steps
        self.accuracy = None
        self.task_loss = None

    def on_train_end(self, logs=None):
        results = self.model.evaluate(self.dataset, steps=self.steps, verbose=0, return_dict=True)
        self.accuracy = float(results["accuracy"])
        self.task_loss = float(results["task_loss"])


def _current_penalty(model):
    """The current `lambda` (the same in every masked layer), or None for IMP."""
    layers = masked_layers(model)
    if not layers or layers[0].mask_penalty <= 0:
        return None
    return float(layers[0].penalty_weight.numpy())


def _log(config, message):
    """One-line summaries; printed at every Keras verbosity (they are what a run reports)."""
    del config
    print(message, flush=True)


STATE_DIR = "state"
# Settings that may change between a run and its resumption.
_RESUMABLE_CHANGES = ("verbose", "output_dir", "overwrite", "dry_run", "distribute", "rounds",
                      "steps_per_execution")


class RunExistsError(ConfigError):
    """The output directory holds a run with other settings."""


class Search:
    """One ticket search: holds the data, the strategy, the model and the results so far.

    A search resumes where it stopped: run the same command again and it
    continues from the last finished epoch (Keras `BackupAndRestore` inside a
    round or a ticket retraining, `state/` between them), with the same
    results as an uninterrupted run on CPU with the same seed.

    With `config.dry_run` everything is built and every phase runs for
    `DRY_RUN_STEPS` steps in a temporary directory that is removed afterwards.
    """

    DRY_RUN_STEPS = 2

    def __init__(self, config: SearchConfig):
        config.validate()
        self.dry_run = config.dry_run
        self.config = config.for_dry_run() if config.dry_run else config
        self.steps = self.DRY_RUN_STEPS if config.dry_run else None
        self.results = {"flags": config.to_dict(), "dense": None, "rounds": []}
        self.last_ticket = None
        self.chief = True  # whether this process writes the run (see distribute.is_chief)

    def _path(self, *parts):
        return os.path.join(self.output_dir, *parts)

    def _state(self, *parts):
        return self._path(STATE_DIR, *parts)

    def _write_results(self):
        io_utils.write_json(self._path(RESULTS_FILE), self.results)

    def _previous_results(self):
        """Finished work in `output_dir`, or None; refuses a run with other settings."""
        path = self._path(RESULTS_FILE)
        if not os.path.exists(path) or self.config.overwrite:
            return None
        try:
            with open(path) as handle:
                previous = json.load(handle)
            flags = previous["flags"]
        except (OSError, ValueError, KeyError, TypeError):
            raise RunExistsError(
                f"--output_dir={self.output_dir!r} holds an unreadable {RESULTS_FILE}; "
                "pass --overwrite to start again or choose another --output_dir.") from None
        current = self.results["flags"]
        changed = sorted(k for k in set(flags) | set(current)
                         if k not in _RESUMABLE_CHANGES and flags.get(k) != current.get(k))
        if changed:
            details = ", ".join(f"--{k}={current.get(k)!r} (was {flags.get(k)!r})"
                                for k in changed[:3])
            raise RunExistsError(
                f"--output_dir={self.output_dir!r} holds a run with other settings: {details}; "
                "pass --overwrite to replace it or choose another --output_dir.")
        previous["flags"]["rounds"] = self.config.rounds  # a search may be extended
        return previous

    def _clear_output_dir(self):
        for name in (RESULTS_FILE, "tickets", "ticket", STATE_DIR, "tensorboard"):
            io_utils.remove_path(self._path(name))

    def _fit(self, model, epochs, callbacks, backup_name, stream):
        """`fit` that resumes from `state/<backup_name>` and stops on a NaN loss."""
        backup_dir = self._state(backup_name)
        start_epoch = 0
        metadata = os.path.join(backup_dir, "training_metadata.json")
        if os.path.exists(metadata):
            with open(metadata) as handle:
                start_epoch = int(json.load(handle)["epoch"])
        train = data.epoch_stream(self.splits, self.config.batch_size, seed=self.config.seed,
                                  stream=stream, start_epoch=start_epoch,
                                  augment=self.config.augment)
        stop = cb.StopOnNonFinite()
        model._initial_epoch = None  # Keras keeps it from a previous BackupAndRestore
        backup = keras.callbacks.BackupAndRestore(backup_dir, delete_checkpoint=False)
        model.fit(train, validation_data=self.validation, epochs=epochs,
                  steps_per_epoch=self.steps or self.steps_per_epoch,
                  validation_steps=self.steps, verbose=self.config.verbose, shuffle=False,
                  callbacks=[backup, stop] + callbacks)
        if stop.diverged:
            where = stop.diverged
            raise cb.TrainingDiverged(
                f"{backup_name.replace('_', ' ')} diverged at epoch {where['epoch']}, step "
                f"{where['step']} (loss {where['loss']}); try a lower --learning_rate (now "
                f"{self.config.learning_rate}) or --mask_learning_rate, a smaller --mask_penalty "
                f"(now {self.config.mask_penalty}) or --mixed_precision=none; finished rounds are "
                f"kept in {self._path(RESULTS_FILE)}.")

    def _test_accuracy(self, model):
        results = model.evaluate(self.test, steps=self.steps, verbose=0, return_dict=True)
        return float(results["accuracy"])

    def _ticket_model(self, model, masks, start_weights):
        with self.strategy.scope():
            ticket = tickets.build_ticket(model, masks, start_weights)
            return compile_model(ticket, self.config, self.steps_per_epoch,
                                 self.steps_per_execution)

    def _train_ticket(self, model, masks, start_weights, run_name, stream, epochs=None):
        """Retrains the ticket (`masks`, from `start_weights`) and returns its test accuracy."""
        epochs = self.config.ticket_epochs if epochs is None else epochs
        ticket = self._ticket_model(model, masks, start_weights)
        logs = [keras.callbacks.TensorBoard(self._path("tensorboard", run_name))] if self.chief \
            else []
        self._fit(ticket, epochs, logs, run_name, stream)
        self.last_ticket = ticket
        return self._test_accuracy(ticket)

    def _train_dense(self, model, masks, initial_weights):
        """The dense network (all-ones mask) trained from `w_0` for as many epochs as a
        ticket sees from initialization (`ticket_epoch + ticket_epochs`)."""
        config = self.config
        epochs = config.ticket_epoch + config.ticket_epochs
        all_ones = {name: np.ones_like(mask) for name, mask in masks.items()}
        accuracy = self._train_ticket(model, all_ones, initial_weights, "dense", 0, epochs)
        _log(config, f"dense baseline: test accuracy {accuracy:.4f} after {epochs} epochs")
        return {"remaining": 1.0, "test_accuracy": accuracy, "epochs": epochs}

    def _evaluate_supermask(self, model, masks, initial_weights):
        """Supermask: the binary mask on the frozen `w_0`, evaluated without retraining."""
        ticket = self._ticket_model(model, masks, initial_weights)
        self.last_ticket = ticket
        return self._test_accuracy(ticket)

    def _round_callbacks(self, round_index, method, round_manager, evaluator):
        config = self.config
        log_dir = self._path("tensorboard", f"round_{round_index}")
        schedule = []
        if method.anneals_temperature:
            schedule.append(cb.TemperatureCallback(
                config.final_temperature, config.initial_temperature,
                per_epoch=config.temperature_per_epoch))
        if config.target_remaining:
            target = cb.round_targets(config.target_remaining, config.rounds)[round_index - 1]
            schedule.append(cb.TargetRemaining(target, start=config.target_start))
        logs = [cb.MaskSummaries(os.path.join(log_dir, "masks")),
                keras.callbacks.TensorBoard(log_dir)] if self.chief else []
        # The evaluator must run before the round manager resets the masks.
        return schedule + logs + [evaluator, round_manager]

    def run(self):
        """Runs (or resumes) the search and returns the results, also in `results.json`."""
        precision = keras.mixed_precision.global_policy()
        if self.config.mixed_precision != "none":
            keras.mixed_precision.set_global_policy(self.config.mixed_precision)
        try:
            if self.dry_run:
                with tempfile.TemporaryDirectory(prefix="keras_lottery_dry_run_") as directory:
                    return self._run(directory)
            return self._run(self.config.output_dir)
        finally:
            keras.mixed_precision.set_global_policy(precision)

    def _restore(self, model, round_manager, previous):
        """Brings `model` and `round_manager` to where the previous process stopped."""
        finished = previous["rounds"] if previous else []
        snapshots = {}
        for epoch in round_manager.snapshot_epochs():
            path = self._state(f"snapshot_epoch_{epoch}.npz")
            if os.path.exists(path):
                snapshots[epoch] = weights_lib.load_snapshot(path)
        masks = [tickets.load_masks(self._path("tickets", f"round_{r['round']}.npz"))
                 for r in finished]
        round_manager.restore_state(len(finished), snapshots, masks)
        if finished:
            model.optimizer.build(model.trainable_variables)
            model.load_weights(self._state(f"after_round_{len(finished)}.weights.h5"))
            self.results = previous
            _log(self.config, f"resuming after round {len(finished)} of {self.config.rounds}")

    def _run(self, output_dir):
        config = self.config
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)
        self.strategy = distribute.make_strategy(config.distribute)
        self.chief = distribute.is_chief(self.strategy)
        self.output_dir = distribute.worker_output_dir(self.strategy, output_dir)
        previous = self._previous_results()
        if previous is None:
            self._clear_output_dir()
        elif len(previous["rounds"]) >= config.rounds:
            _log(config, f"{self._path(RESULTS_FILE)} already holds all {config.rounds} rounds")
            return previous
        self.splits = data.load(config.dataset, config.data_dir or None,
                                validation_examples=config.validation_examples,
                                train_examples=config.train_examples, seed=config.seed)
        self.validation, self.test = data.evaluation_pipelines(self.splits, config.batch_size)
        self.steps_per_epoch = data.steps_per_epoch(self.splits, config.batch_size)
        if self.steps:
            self.steps_per_epoch = self.steps
        wanted = compat.steps_per_execution_for(self.strategy, config.steps_per_execution)
        if wanted != config.steps_per_execution:
            _log(config, f"--steps_per_execution={config.steps_per_execution}: running 1 step per "
                         f"call on {self.strategy.num_replicas_in_sync} replicas (Keras cannot run "
                         "several under tf.distribute yet, keras-team/keras#19246); same results")
        self.steps_per_execution = execution_steps(self.steps_per_epoch, wanted)
        if self.steps_per_execution != wanted and not self.steps:
            _log(config, f"--steps_per_execution={config.steps_per_execution}: running "
                         f"{self.steps_per_execution} steps per call, the largest divisor of the "
                         f"{self.steps_per_epoch} steps of an epoch")
        with self.strategy.scope():
            model = build_model(config, self.splits.input_shape, self.splits.num_classes)
            compile_model(model, config, self.steps_per_epoch, self.steps_per_execution)
        method = make_method(config, model)
        round_manager = cb.RoundManager(
            rewind_epoch=None if config.rewind_epoch < 0 else config.rewind_epoch,
            ticket_epoch=config.ticket_epoch, method=method,
            on_snapshot=lambda epoch, weights: weights_lib.save_snapshot(
                self._state(f"snapshot_epoch_{epoch}.npz"), weights))
        initial_weights = weights_lib.snapshot(model)  # w_0, the same in a resumed run
        os.makedirs(self.output_dir, exist_ok=True)
        with self.strategy.scope():  # the optimizer's slots are distributed variables
            self._restore(model, round_manager, previous)
        self._write_results()
        for round_index in range(len(self.results["rounds"]) + 1, config.rounds + 1):
            self._search_round(round_index, model, method, round_manager, initial_weights)
        io_utils.remove_path(self._state())
        return self.results

    def _search_round(self, round_index, model, method, round_manager, initial_weights):
        config = self.config
        started = time.time()
        evaluator = _EvaluateBeforeReset(self.test, self.steps)
        self._fit(model, config.epochs,
                  self._round_callbacks(round_index, method, round_manager, evaluator),
                  f"round_{round_index}", stream=2 * round_index)
        masks = round_manager.tickets[-1]
        tickets.save_masks(self._path("tickets", f"round_{round_index}.npz"), masks)
        io_utils.atomic_write(self._state(f"after_round_{round_index}.weights.h5"),
                              model.save_weights, suffix=".weights.h5")
        if (config.dense_baseline and not config.supermask and self.results["dense"] is None
                and config.ticket_epoch + config.ticket_epochs > 0):
            self.results["dense"] = self._train_dense(model, masks, initial_weights)
            self._write_results()
        ticket_accuracy = None
        if config.supermask:
            ticket_accuracy = self._evaluate_supermask(model, masks, initial_weights)
        elif config.ticket_epochs:
            ticket_accuracy = self._train_ticket(
                model, masks, round_manager.ticket_weights, f"round_{round_index}_ticket",
                stream=2 * round_index + 1)
        search_epochs = round_index * config.epochs
        record = {
            "round": round_index,
            "method": config.method,
            "remaining": tickets.remaining_fraction(masks),
            "search_accuracy": evaluator.accuracy,
            "search_loss": evaluator.task_loss,
            "ticket_accuracy": ticket_accuracy,
            "epochs": search_epochs,
            "supermask": config.supermask,
            "mask_penalty": _current_penalty(model),
            "remaining_per_layer": {name: float(m.mean()) for name, m in masks.items()},
            "wall_time_s": round(time.time() - started, 1),
        }
        if ticket_accuracy is not None and round_index == config.rounds and self.chief:
            report = tickets.export(self.last_ticket, self._path("ticket"))
            record["ticket_report"] = {k: v for k, v in report.items() if k != "layers"}
        self.results["rounds"].append(record)
        self._write_results()
        for name in (f"round_{round_index}", f"round_{round_index}_ticket", "dense",
                     f"after_round_{round_index - 1}.weights.h5"):
            io_utils.remove_path(self._state(name))
        ticket_text = "not retrained" if ticket_accuracy is None else f"{ticket_accuracy:.4f}"
        _log(config,
             f"{'dry run: ' if self.dry_run else ''}round {round_index}/{config.rounds} "
             f"({config.method}): remaining {record['remaining']:.2%}, search accuracy "
             f"{evaluator.accuracy:.4f}, ticket accuracy {ticket_text}, {search_epochs} "
             f"search epochs, {record['wall_time_s']}s")


def run(config):
    """Runs the ticket search `config` and returns its results (also in `results.json`)."""
    return Search(config).run()
