"""Room `callbacks`: the Keras callbacks of a ticket search (one `model.fit` call is one round),
one per module.

    round_manager         RoundManager, end_round: where every round ends, for every method
    mask_summaries        MaskSummaries: beta, kept fractions, penalty, histograms of beta*s
    epoch_scalars         EpochScalars: a phase's epoch logs, train/validation as tags
    summary_files         one TensorBoard event file per run and process
    target_remaining      TargetRemaining: a round's ticket keeps an exact fraction
    budget                Budget: a round's ticket deploys within a fraction of the dense cost
    stop_on_non_finite    StopOnNonFinite: stops at the first NaN loss and says where
    clock                 RoundClock: the step counting the callbacks share

`TemperatureCallback` (CS's annealing of beta) lives with CS in `keras_lottery.methods.cs`
and is named here too.
May import: `layers`, `methods`, `tickets`, `compat`.
"""

from keras_lottery.callbacks.budget import Budget
from keras_lottery.callbacks.epoch_scalars import EpochScalars
from keras_lottery.callbacks.mask_summaries import MaskSummaries, remaining_fractions
from keras_lottery.callbacks.round_manager import RoundManager, end_round, reset_optimizer_state
from keras_lottery.callbacks.stop_on_non_finite import StopOnNonFinite, TrainingDiverged
from keras_lottery.callbacks.target_remaining import TargetRemaining, round_targets
from keras_lottery.methods.cs import TemperatureCallback, TemperatureSchedule, set_temperature

__all__ = [
    "Budget", "EpochScalars", "MaskSummaries", "RoundManager", "StopOnNonFinite", "TargetRemaining",
    "TemperatureCallback",
    "TemperatureSchedule", "TrainingDiverged", "end_round",
    "remaining_fractions", "reset_optimizer_state", "round_targets", "set_temperature",
]
