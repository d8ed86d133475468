"""The ticket search behind `python -m apps.search`: `run(config)`.

The search itself is `keras_lottery.runner.LotteryRunner` (a loop over idempotent
phases) writing into a `keras_lottery.rundir.RunDirectory`; the model, optimizer
and compile settings come from `keras_lottery.training`. This module keeps the
names earlier code imported from it.
"""

from keras_lottery import distribute, methods  # noqa: F401  (distribute: kept for callers)
from keras_lottery.rundir import RESULTS_FILE, RunExistsError, RunLockedError  # noqa: F401
from keras_lottery.runner import EmptyTicket, LotteryRunner, run  # noqa: F401
from keras_lottery.training import (build_model, compile_model, execution_steps,  # noqa: F401
                                    learning_rate_schedule, make_optimizer)

#: The runner under its earlier name.
Search = LotteryRunner


def make_method(config, model=None):
    """The `Method` of `config` (kept for callers; see `methods.from_config`)."""
    del model
    return methods.from_config(config)
