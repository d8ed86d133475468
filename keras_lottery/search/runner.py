"""The lottery runner: one visible loop over idempotent steps (as OpenLTH's `lottery/runner.py`).

    for step in steps.plan(config, method):     round 1, dense baseline, ticket 1, round 2, ...
        if not step.done(state):
            step.run(state)

Each step is done when its record is in `results.json`, so resuming is running the loop
again; inside a step, training continues from the step's last epoch checkpoint
(`keras_lottery.search.checkpoints`). The run directory owns the files. What differs
between methods is asked of the `Method`: layer arguments, callbacks of a round, the
round-end step, where the ticket comes from (`steps.plan`).
"""

import tempfile

import keras
import tensorflow as tf

from keras_lottery import io_utils
from keras_lottery.search import distribute, steps
from keras_lottery.search.run_directory import RunDirectory
from keras_lottery.search.state import open_search
from keras_lottery.search.steps import ticket_done

#: Settings that may change between a run and its resumption.
RESUMABLE_CHANGES = ("verbose", "output_dir", "overwrite", "dry_run", "distribute", "rounds",
                     "steps_per_execution")
#: Steps of each training and evaluation in a `--dry_run`.
DRY_RUN_STEPS = 2


class LotteryRunner:
    """Runs (or resumes) the ticket search `config`; `run()` returns the results.

    Args:
        config: a `SearchConfig`.
        callbacks: extra Keras callbacks for every phase, or a function
            `phase -> list` (phases: `round_<r>`, `round_<r>_ticket`, `dense`).
    """

    def __init__(self, config, callbacks=None):
        config.validate()
        self.dry_run = config.dry_run
        self.config = config.for_dry_run() if config.dry_run else config
        self.extra_callbacks = callbacks
        self.chief = True  # whether this process writes the run (set by `run`)

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
        strategy = distribute.make_strategy(config.distribute)
        self.chief = distribute.is_chief(strategy)
        run_dir = RunDirectory(distribute.worker_output_dir(strategy, output_dir), self.chief)
        with run_dir.lock(), distribute.running(strategy):
            previous = run_dir.previous_run(config.to_dict(), RESUMABLE_CHANGES,
                                            overwrite=config.overwrite)
            if previous and finished(previous, config.rounds):
                steps.log(f"{run_dir.results_path} already holds all {config.rounds} rounds")
                return previous
            state = open_search(config, run_dir, strategy, previous,
                                DRY_RUN_STEPS if self.dry_run else None, self.extra_callbacks)
            for step in steps.plan(config, state.method):
                if not step.done(state):
                    step.run(state)
            state.trainer.scalars.close()
            io_utils.remove_path(run_dir.state("phases"))  # every step has finished
            return state.results


def finished(results, rounds):
    """Whether `results` hold all `rounds` rounds with their tickets."""
    return len(results["rounds"]) >= rounds and all(map(ticket_done, results["rounds"]))


def run(config, callbacks=None):
    """Runs the ticket search `config` and returns its results (also in `results.json`)."""
    return LotteryRunner(config, callbacks).run()
