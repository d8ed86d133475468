"""`SearchState`: what the steps of a search share, and how a run gets there (`open_search`).

Opening a search loads the data, builds and compiles the model, sets an earlier run
aside (`--overwrite`) or brings the model back to where it stopped, and writes
`results.json`. Nothing of an earlier run is touched before the data and the model are
ready, so a bad setting found there leaves it as it was.
"""

import dataclasses
import os

import keras

from keras_lottery import callbacks as cb
from keras_lottery import compat, data, methods, tickets
from keras_lottery.search import model_setup, tensorboard
from keras_lottery.search.config import ConfigError, budget_of
from keras_lottery.search.run_directory import RunDirectory, environment
from keras_lottery.search.steps import log
from keras_lottery.search.trainer import PhaseTrainer
from keras_lottery.tickets import snapshots
from keras_lottery.tickets.budgets import minimal_ticket
from keras_lottery.tickets.deployed_cost import DeployedCost
from keras_lottery.tickets.shrinking import ShrinkError


@dataclasses.dataclass
class SearchState:
    """The run as the steps see it.

    Attributes:
        config: the `SearchConfig`; method: its `Method`.
        run_dir: the `RunDirectory`; results: what `results.json` holds (steps add to it).
        model: the searched model; initial_weights: its `w_0` (a snapshot).
        round_manager: the `RoundManager` (snapshots `w_k`, ends rounds, the tickets).
        trainer: the `PhaseTrainer` every step fits and evaluates with.
    """

    config: object
    method: methods.Method
    run_dir: RunDirectory
    results: dict
    model: object
    initial_weights: dict
    round_manager: cb.RoundManager
    trainer: PhaseTrainer


def _steps_per_execution(config, strategy, method):
    """The steps each call into the compiled step runs: `--steps_per_execution`, or 1 where
    that would change the results (logged)."""
    wanted = config.steps_per_execution
    if wanted > 1 and keras.backend.backend() != "tensorflow" and method.anneals_per_step:
        log(f"--steps_per_execution={wanted}: running 1 step per call on KERAS_BACKEND="
            f"{keras.backend.backend()}, where beta is assigned before every step (on "
            "tensorflow the step reads it from the optimizer's counter)")
        return 1
    if keras.backend.backend() == "tensorflow":
        wanted = compat.steps_per_execution_for(strategy, wanted)
    if wanted != config.steps_per_execution:
        log(f"--steps_per_execution={config.steps_per_execution}: running 1 step per call "
            f"on {strategy.num_replicas_in_sync} replicas (Keras cannot run several under "
            "tf.distribute yet, keras-team/keras#19246); same results")
    return wanted


def _trainer(config, strategy, run_dir, dry_steps, extra_callbacks, method):
    """The data and the `PhaseTrainer` over them."""
    splits = data.load(config.dataset, config.data_dir or None,
                       validation_examples=config.validation_examples,
                       train_examples=config.train_examples, seed=config.seed,
                       scaling=config.input_scaling, image_size=config.image_size)
    validation, test = data.evaluation_pipelines(splits, config.batch_size)
    if not len(splits.x_val):  # --validation_examples=0: train on every image
        validation = None
    steps_per_epoch = dry_steps or data.steps_per_epoch(splits, config.batch_size)
    wanted = _steps_per_execution(config, strategy, method)
    steps = model_setup.execution_steps(steps_per_epoch, wanted)
    if steps != wanted and not dry_steps:
        log(f"--steps_per_execution={config.steps_per_execution}: running {steps} steps "
            f"per call, the largest divisor of the {steps_per_epoch} steps of an epoch")
    return PhaseTrainer(config, strategy, splits, validation, test, run_dir, steps_per_epoch,
                        steps, dry_steps, chief=run_dir.chief, extra_callbacks=extra_callbacks)


def _round_manager(config, method, run_dir):
    budget = budget_of(config)
    return cb.RoundManager(
        budget=budget if budget is not None and method.ticket_after_round_end else None,
        rewind_epoch=None if config.rewind_epoch < 0 else config.rewind_epoch,
        ticket_epoch=config.ticket_epoch, method=method, end_on_train_end=False,
        reset_optimizer=not config.keep_optimizer_state,
        on_snapshot=lambda epoch, weights: snapshots.save_snapshot(
            run_dir.snapshot_path(epoch), weights))


def _restore(state, strategy):
    """Brings the model and the round manager to where the previous process stopped."""
    finished, run_dir = state.results["rounds"], state.run_dir
    saved = {}
    for epoch in state.round_manager.snapshot_epochs():
        try:
            saved[epoch] = snapshots.load_snapshot(run_dir.snapshot_path(epoch))
        except FileNotFoundError:
            pass
    masks = [tickets.load_masks(run_dir.masks_path(r["round"])) for r in finished]
    state.round_manager.restore_state(len(finished), saved, masks)
    if finished:
        with strategy.scope():  # optimizer slots are distributed variables
            state.model.optimizer.build(state.model.trainable_variables)
            state.model.load_weights(run_dir.round_model_path(len(finished)))
        log(f"resuming after round {len(finished)} of {state.config.rounds}")


def _check_budget(config, model):
    """A `ConfigError` (one line, before anything is written) for a budget this model cannot
    count or reach."""
    budget = budget_of(config)
    if budget is None:
        return
    flag = f"--target_{budget.kind}={budget.fraction!r}"
    try:
        cost = DeployedCost(model, budget.kind)
        least = cost.fraction(minimal_ticket(cost, **budget.floor))
    except (ValueError, ShrinkError) as error:
        raise ConfigError(f"{flag} is invalid: {error}") from None
    if least > budget.fraction:
        raise ConfigError(f"{flag} is invalid: the ticket must keep {least:.4g} of the dense "
                          f"{budget.kind} (the groups a cut cannot remove and --min_units="
                          f"{budget.min_units}, --min_unit_fraction={budget.min_fraction:g}, "
                          f"--unit_multiple={budget.unit_multiple} "
                          "per layer); give a larger budget.")
    for name, why in cost.unshrinkable.items():
        log(f"budget: the units of layer {name!r} stay ({why})")


def open_search(config, run_dir, strategy, previous, dry_steps=None, extra_callbacks=None):
    """The `SearchState` of search `config` in `run_dir`: new, or continuing `previous` (its
    results). Writes `results.json` (and, for a new search, its HParams)."""
    method = methods.from_config(config)
    trainer = _trainer(config, strategy, run_dir, dry_steps, extra_callbacks, method)
    with strategy.scope():
        model = model_setup.build_model(config, trainer.splits.input_shape,
                                        trainer.splits.num_classes,
                                        trainer.splits.vocabulary_size)
        trainer.compile(model)
    _check_budget(config, model)
    aside = run_dir.set_aside() if config.overwrite else None
    results = previous or {"environment": environment(), "flags": config.to_dict(),
                           "dense": None, "rounds": []}
    results["flags"]["rounds"] = config.rounds  # a search may be extended
    results["model"] = {"input_shape": list(trainer.splits.input_shape),  # for load_run
                        "num_classes": int(trainer.splits.num_classes)}
    if trainer.splits.vocabulary_size:
        results["model"]["vocabulary_size"] = int(trainer.splits.vocabulary_size)
    state = SearchState(config, method, run_dir, results, model, snapshots.snapshot(model),
                        _round_manager(config, method, run_dir), trainer)
    if run_dir.chief and not os.path.exists(run_dir.initial_weights_path()):
        snapshots.save_snapshot(run_dir.initial_weights_path(), state.initial_weights)
    _restore(state, strategy)
    run_dir.write_results(results)
    if previous is None and run_dir.chief and not dry_steps:
        tensorboard.write_search_hparams(run_dir.tensorboard("summary"), results["flags"])
    RunDirectory.discard(aside)
    return state
