"""The lottery runner: one loop over idempotent phases (as OpenLTH's `lottery/runner.py`).

    for r in 1..R:
        phases.search(r)            train round r, evaluate it, end it (`rounds.end_round`)
        phases.dense_baseline()     after round 1: the dense network from w_0, as long as a ticket
        phases.retrain_ticket(r)    the ticket of round r from its start weights (last: export)

Each phase returns at once when its output is already in `results.json`, so
resuming is running the loop again; inside a phase, training continues from the
phase's last epoch checkpoint (`keras_lottery.checkpoints`). The run directory
(`keras_lottery.rundir`) owns the files. What differs between CS, IMP and ISS is
asked of the `Method` (`keras_lottery.methods`): layer arguments, callbacks of a
round, the round-end step.
"""

import os
import tempfile

import keras
import tensorflow as tf

from keras_lottery import callbacks as cb
from keras_lottery import (compat, data, distribute, io_utils, methods, phases, summaries,
                           tickets, training)
from keras_lottery import weights as weights_lib
from keras_lottery.config import SearchConfig
from keras_lottery.phases import EmptyTicket, log  # noqa: F401  (EmptyTicket: part of the API)
from keras_lottery.rundir import RunDirectory, environment

# Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = ("verbose", "output_dir", "overwrite", "dry_run", "distribute", "rounds",
                     "steps_per_execution")


class LotteryRunner:
    """Runs (or resumes) the ticket search `config`; `run()` returns the results.

    Args:
        config: a `SearchConfig`.
        callbacks: extra Keras callbacks for every phase, or a function
            `phase -> list` (phases: `round_<r>`, `round_<r>_ticket`, `dense`).
    """

    DRY_RUN_STEPS = 2

    def __init__(self, config: SearchConfig, callbacks=None):
        config.validate()
        self.dry_run = config.dry_run
        self.config = config.for_dry_run() if config.dry_run else config
        self.steps = self.DRY_RUN_STEPS if config.dry_run else None
        self.extra_callbacks = callbacks
        self.chief = True  # whether this process writes the run (see distribute.is_chief)
        self.results = None

    def run(self):
        """Runs the search (in a temporary directory for a dry run); returns the results."""
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

    def _run(self, output_dir):
        config = self.config
        if config.deterministic:
            tf.config.experimental.enable_op_determinism()
        keras.utils.set_random_seed(config.seed)
        self.strategy = distribute.make_strategy(config.distribute)
        self.chief = distribute.is_chief(self.strategy)
        self.run_dir = RunDirectory(distribute.worker_output_dir(self.strategy, output_dir))
        with self.run_dir.lock():
            previous = self.run_dir.previous_run(config.to_dict(), RESUMABLE_CHANGES,
                                                 overwrite=config.overwrite)
            if previous and self._finished(previous):
                log(f"{self.run_dir.results_path} already holds all {config.rounds} rounds")
                return previous
            self._prepare()  # data and model: an error here leaves the earlier run untouched
            aside = self.run_dir.set_aside() if config.overwrite else None
            self.results = previous or {"environment": environment(), "flags": config.to_dict(),
                                        "dense": None, "rounds": []}
            self.results["flags"]["rounds"] = config.rounds  # a search may be extended
            self.results["model"] = self.model_shape  # what tickets.load_run rebuilds
            if self.chief and not os.path.exists(self.run_dir.initial_weights_path()):
                weights_lib.save_snapshot(self.run_dir.initial_weights_path(),
                                          self.initial_weights)
            with self.strategy.scope():  # optimizer slots are distributed variables
                self._restore()
            self.run_dir.write_results(self.results)
            if previous is None and self.chief and not self.dry_run:
                summaries.write_search_hparams(self.run_dir.tensorboard(), self.results["flags"])
            RunDirectory.discard(aside)
            reuse = phases.reuses_next_round(config)
            for round_index in range(1, config.rounds + 1):
                phases.search(self, round_index)
                if round_index == 1:
                    phases.dense_baseline(self)
                if reuse and round_index > 1:
                    phases.ticket_from_next_round(self, round_index - 1)
                if not reuse or round_index == config.rounds:
                    phases.retrain_ticket(self, round_index)
            io_utils.remove_path(self.run_dir.state("phases"))  # every phase has finished
            return self.results

    def _finished(self, results):
        rounds = results["rounds"]
        return len(rounds) >= self.config.rounds and all(map(phases.ticket_done, rounds))

    # Setting up.
    def _prepare(self):
        config = self.config
        self.splits = data.load(config.dataset, config.data_dir or None,
                                validation_examples=config.validation_examples,
                                train_examples=config.train_examples, seed=config.seed,
                                scaling=config.input_scaling)
        self.validation, self.test = data.evaluation_pipelines(self.splits, config.batch_size)
        if not len(self.splits.x_val):  # --validation_examples=0: train on every image
            self.validation = None
        self.steps_per_epoch = self.steps or data.steps_per_epoch(self.splits, config.batch_size)
        self.steps_per_execution = self._execution_steps()
        self.method = methods.from_config(config)
        self.trainer = phases.PhaseTrainer(self)
        with self.strategy.scope():
            self.model = training.build_model(config, self.splits.input_shape,
                                              self.splits.num_classes)
            self.trainer.compile(self.model)
        self.round_manager = cb.RoundManager(
            rewind_epoch=None if config.rewind_epoch < 0 else config.rewind_epoch,
            ticket_epoch=config.ticket_epoch, method=self.method, end_on_train_end=False,
            reset_optimizer=not config.keep_optimizer_state,
            on_snapshot=lambda epoch, weights: weights_lib.save_snapshot(
                self.run_dir.snapshot_path(epoch), weights))
        self.initial_weights = weights_lib.snapshot(self.model)  # w_0, the same when resumed
        self.model_shape = {"input_shape": list(self.splits.input_shape),
                            "num_classes": int(self.splits.num_classes)}

    def _execution_steps(self):
        config = self.config
        wanted = compat.steps_per_execution_for(self.strategy, config.steps_per_execution)
        if wanted != config.steps_per_execution:
            log(f"--steps_per_execution={config.steps_per_execution}: running 1 step per call "
                 f"on {self.strategy.num_replicas_in_sync} replicas (Keras cannot run several "
                 "under tf.distribute yet, keras-team/keras#19246); same results")
        steps = training.execution_steps(self.steps_per_epoch, wanted)
        if steps != wanted and not self.steps:
            log(f"--steps_per_execution={config.steps_per_execution}: running {steps} steps "
                 f"per call, the largest divisor of the {self.steps_per_epoch} steps of an epoch")
        return steps

    def _restore(self):
        """Brings the model and the round manager to where the previous process stopped."""
        finished = self.results["rounds"]
        snapshots = {}
        for epoch in self.round_manager.snapshot_epochs():
            path = self.run_dir.snapshot_path(epoch)
            try:
                snapshots[epoch] = weights_lib.load_snapshot(path)
            except FileNotFoundError:
                pass
        masks = [tickets.load_masks(self.run_dir.masks_path(r["round"])) for r in finished]
        self.round_manager.restore_state(len(finished), snapshots, masks)
        if finished:
            self.model.optimizer.build(self.model.trainable_variables)
            self.model.load_weights(self.run_dir.round_model_path(len(finished)))
            log(f"resuming after round {len(finished)} of {self.config.rounds}")

def run(config, callbacks=None):
    """Runs the ticket search `config` and returns its results (also in `results.json`)."""
    return LotteryRunner(config, callbacks).run()
