"""`PhaseTrainer`: the training and evaluation every step of a search shares.

It fits a phase from the phase's last epoch checkpoint, with a checkpoint after every
finite epoch, stops with `TrainingDiverged` on a NaN loss, evaluates on the test set,
and writes the TensorBoard logs of the process that writes the run (the chief).
"""

import dataclasses

import tensorflow as tf

from keras_lottery import callbacks as cb
from keras_lottery import data
from keras_lottery.search import checkpoints, model_setup
from keras_lottery.search.run_directory import RunDirectory
from keras_lottery.search.tensorboard import ScalarWriter
from keras_lottery.tickets import build_ticket


@dataclasses.dataclass
class PhaseTrainer:
    """`fit` and `evaluate` for the steps of a search, in its strategy and run directory.

    Attributes:
        config: the `SearchConfig`.
        strategy: the `tf.distribute.Strategy` every model is built in.
        splits: the data (`data.Splits`); validation, test: their evaluation pipelines.
        run_dir: the `RunDirectory`.
        steps_per_epoch, steps_per_execution: of every `fit`; dry_steps: 2 in a dry run
            (every `fit` and `evaluate` stops after them), else None.
        chief: whether this process writes logs; extra_callbacks: the caller's callbacks
            for every phase, or a function `phase -> list`.
    """

    config: object
    strategy: tf.distribute.Strategy
    splits: data.Splits
    validation: object
    test: object
    run_dir: RunDirectory
    steps_per_epoch: int
    steps_per_execution: int
    dry_steps: int = None
    chief: bool = True
    extra_callbacks: object = None
    scalars: ScalarWriter = dataclasses.field(default_factory=ScalarWriter)

    def compile(self, model):
        return model_setup.compile_model(model, self.config, self.steps_per_epoch,
                                         self.steps_per_execution)

    def ticket_model(self, model, masks, start_weights):
        """`model` with `masks` fixed, from `start_weights`, compiled in the strategy."""
        with self.strategy.scope():
            return self.compile(build_ticket(model, masks, start_weights))

    def tensorboard(self, name, epoch_offset=0):
        """The epoch logs of a phase into TensorBoard run `name` (`search`, `tickets`,
        `dense`), its epochs shifted by `epoch_offset` (the chief writes logs, nobody else;
        a dry run nothing)."""
        return [cb.EpochScalars(self.run_dir.tensorboard(name), epoch_offset)
                ] if self.chief and not self.dry_steps else []

    def write_scalars(self, name, step, values):
        """`{tag: value}` at `step` into TensorBoard run `name` (`summary`: one point per
        round; a phase: its test accuracy); the chief writes, and a dry run nothing."""
        if self.chief and not self.dry_steps:
            self.scalars.write(self.run_dir.tensorboard(name), step, values)

    def _extra(self, phase):
        extra = self.extra_callbacks
        return list(extra(phase) if callable(extra) else extra or [])

    def fit(self, model, epochs, callbacks, phase, stream):
        """Trains `model` to `epochs` epochs from the phase's last checkpoint; returns the
        phase's per-epoch history. `stream` keys the order of its training batches."""
        config = self.config
        phase_dir = self.run_dir.phase_dir(phase)
        start = 0
        if checkpoints.exist(phase_dir):
            with self.strategy.scope():
                model.optimizer.build(model.trainable_variables)
                start = checkpoints.restore(model, phase_dir)
        train = data.epoch_stream(self.splits, config.batch_size, seed=config.seed,
                                  stream=stream, start_epoch=start, augment=config.augment)
        stop = cb.StopOnNonFinite()
        model.fit(train, validation_data=self.validation, initial_epoch=start, epochs=epochs,
                  steps_per_epoch=self.steps_per_epoch, validation_steps=self.dry_steps,
                  verbose=config.verbose, shuffle=False,
                  callbacks=[stop] + callbacks + self._extra(phase)
                  + [checkpoints.EpochCheckpoint(phase_dir)])
        if stop.diverged:
            where = stop.diverged
            raise cb.TrainingDiverged(
                f"{phase.replace('_', ' ')} diverged at epoch {where['epoch']}, step "
                f"{where['step']} (loss {where['loss']}); try a lower --learning_rate (now "
                f"{config.learning_rate}) or --mask_learning_rate, a smaller --mask_penalty "
                f"(now {config.mask_penalty}) or --mixed_precision=none; finished rounds are "
                f"kept in {self.run_dir.results_path}.")
        return checkpoints.history(phase_dir)

    def evaluate(self, model):
        """`(test accuracy, test task loss)` of `model`."""
        results = model.evaluate(self.test, steps=self.dry_steps, verbose=0, return_dict=True)
        return float(results["accuracy"]), float(results["task_loss"])

    def validate(self, model):
        """`model`'s validation accuracy (what model selection may look at), or None when
        every training image trains (`--validation_examples=0`)."""
        if self.validation is None:
            return None
        results = model.evaluate(self.validation, steps=self.dry_steps, verbose=0,
                                 return_dict=True)
        return float(results["accuracy"])
