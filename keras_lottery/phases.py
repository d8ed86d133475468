"""The phases of a lottery run. Each returns at once when its record is in `results.json`.

- `search(run, r)`: trains round r from its last checkpoint, evaluates the searched
  network, ends the round (`rounds.end_round`: the ticket, the method's reset, the
  rewind) and records the ticket;
- `dense_baseline(run)`: the dense network from `w_0`, as long as a ticket trains;
- `retrain_ticket(run, r)`: the ticket of round r from its start weights (the
  supermask: evaluated as it is); the last round's ticket is exported.

`run` is the `LotteryRunner` (`keras_lottery.runner`) that holds the run's state;
`PhaseTrainer` does the training that every phase shares.
"""

import time

import numpy as np

from keras_lottery import callbacks as cb
from keras_lottery import checkpoints, data, io_utils, summaries, tickets, training


class EmptyTicket(cb.TrainingDiverged):
    """A round's ticket keeps no weight: the run stops instead of recording it."""


def ticket_done(record):
    """Whether round `record`'s ticket phase has run (its accuracy may be None: not retrained)."""
    return "ticket_accuracy" in record


def log(message):
    """One-line summaries; printed at every Keras verbosity (they are what a run reports)."""
    print(message, flush=True)


class PhaseTrainer:
    """`fit` and `evaluate` for the phases: from the phase's last epoch checkpoint, with a
    checkpoint after every finite epoch, stopping with `TrainingDiverged` on a NaN loss."""

    def __init__(self, run):
        self.run = run

    def compile(self, model):
        run = self.run
        return training.compile_model(model, run.config, run.steps_per_epoch,
                                      run.steps_per_execution)

    def ticket_model(self, masks, start_weights):
        """The model with `masks` fixed, from `start_weights`, compiled in the strategy."""
        with self.run.strategy.scope():
            return self.compile(tickets.build_ticket(self.run.model, masks, start_weights))

    def tensorboard(self, name, epoch_offset=0):
        """Keras's TensorBoard callback for run `name`, its epochs shifted by `epoch_offset`
        (the chief writes logs, nobody else)."""
        run = self.run
        return [summaries.TimelineTensorBoard(run.run_dir.tensorboard(name), epoch_offset)
                ] if run.chief else []

    def write_scalars(self, name, step, values):
        """`{tag: value}` at `step` into TensorBoard run `name` (`summary`: one point per
        round; a phase: its test accuracy); the chief writes, and a dry run nothing."""
        if self.run.chief and not self.run.dry_run:
            summaries.write_scalars(self.run.run_dir.tensorboard(name), step, values)

    def _extra(self, phase):
        extra = self.run.extra_callbacks
        return list(extra(phase) if callable(extra) else extra or [])

    def fit(self, model, epochs, callbacks, phase, stream):
        run, config = self.run, self.run.config
        phase_dir = run.run_dir.phase_dir(phase)
        start = 0
        if checkpoints.exist(phase_dir):
            with run.strategy.scope():
                model.optimizer.build(model.trainable_variables)
                start = checkpoints.restore(model, phase_dir)
        train = data.epoch_stream(run.splits, config.batch_size, seed=config.seed, stream=stream,
                                  start_epoch=start, augment=config.augment)
        stop = cb.StopOnNonFinite()
        model.fit(train, validation_data=run.validation, initial_epoch=start, epochs=epochs,
                  steps_per_epoch=run.steps_per_epoch, validation_steps=run.steps,
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
                f"kept in {run.run_dir.results_path}.")
        return checkpoints.history(phase_dir)

    def evaluate(self, model):
        """`(test accuracy, test task loss)` of `model`."""
        results = model.evaluate(self.run.test, steps=self.run.steps, verbose=0,
                                 return_dict=True)
        return float(results["accuracy"]), float(results["task_loss"])


def search(run, round_index):
    """Round r: train, evaluate, end the round; records its ticket. Returns the record."""
    config, rounds, trainer = run.config, run.results["rounds"], run.trainer
    if len(rounds) >= round_index:
        return rounds[round_index - 1]
    log(f"round {round_index}/{config.rounds}: searching")
    started, phase = time.time(), f"round_{round_index}"
    schedule = run.method.round_callbacks()
    if config.target_remaining:
        target = cb.round_targets(config.target_remaining, config.rounds)[round_index - 1]
        schedule.append(cb.TargetRemaining(target, start=config.target_start))
    offset = (round_index - 1) * config.epochs  # one timeline of cumulative search epochs
    logs = [cb.MaskSummaries(run.run_dir.tensorboard(phase, "masks"), epoch_offset=offset)
            ] if run.chief else []
    callbacks = schedule + logs + trainer.tensorboard(phase, offset) + [run.round_manager]
    history = trainer.fit(run.model, config.epochs, callbacks, phase, stream=2 * round_index)
    accuracy, task_loss = trainer.evaluate(run.model)  # the searched network, before its reset
    masks = run.round_manager.end_round()
    remaining = tickets.remaining_fraction(masks)
    if remaining == 0 and not run.dry_run:  # (2 steps of a dry run from s0 < 0 keep nothing)
        raise EmptyTicket(
            f"round {round_index}'s ticket keeps no weight (--mask_init={config.mask_init}, "
            f"--mask_penalty={config.mask_penalty}); try a larger --mask_init or a smaller "
            f"--mask_penalty; finished rounds are kept in {run.run_dir.results_path}.")
    tickets.save_masks(run.run_dir.masks_path(round_index), masks)
    checkpoints.write(run.model, run.run_dir.round_model_path(round_index))
    record = {
        "round": round_index, "method": config.method, "remaining": remaining,
        "search_accuracy": accuracy, "search_loss": task_loss,
        "epochs": round_index * config.epochs, "supermask": config.supermask,
        "mask_penalty": training.current_penalty(run.model, run.method),
        "remaining_per_layer": {name: float(m.mean()) for name, m in masks.items()},
        "wall_time_s": round(time.time() - started, 1),
        "history": history,  # per epoch: the Keras logs (accuracy, val_accuracy, remaining, ...)
    }
    rounds.append(record)
    run.run_dir.write_results(run.results)  # the commit point of the phase
    trainer.write_scalars("summary", round_index, {"summary/remaining": remaining,
                                                   "summary/search_accuracy": accuracy})
    io_utils.remove_path(run.run_dir.round_model_path(round_index - 1))
    run.run_dir.clear_phase(phase)
    return record


def dense_baseline(run):
    """The dense network (all-ones mask) from `w_0`, trained as long as a ticket sees from
    initialization (`ticket_epoch + ticket_epochs`). Returns its record or None."""
    config = run.config
    epochs = config.ticket_epoch + config.ticket_epochs
    if (run.results["dense"] is not None or not config.dense_baseline or config.supermask
            or epochs <= 0):
        return run.results["dense"]
    log("dense baseline: training")
    started = time.time()
    masks = tickets.load_masks(run.run_dir.masks_path(1))
    all_ones = {name: np.ones_like(mask) for name, mask in masks.items()}
    dense = run.trainer.ticket_model(all_ones, run.initial_weights)
    history = run.trainer.fit(dense, epochs, run.trainer.tensorboard("dense"), "dense",
                              stream=0)
    accuracy, _ = run.trainer.evaluate(dense)
    run.trainer.write_scalars("dense", epochs, {"test/accuracy": accuracy})
    run.trainer.write_scalars("summary", 1, {"summary/dense_accuracy": accuracy})
    run.results["dense"] = {"remaining": 1.0, "test_accuracy": accuracy, "epochs": epochs,
                            "wall_time_s": round(time.time() - started, 1), "history": history}
    run.run_dir.write_results(run.results)
    run.run_dir.clear_phase("dense")
    log(f"dense baseline: test accuracy {accuracy:.4f} after {epochs} epochs")
    return run.results["dense"]


def reuses_next_round(config):
    """Whether ticket r's retraining is round r+1's training (IMP with rewinding, when round
    r+1 trains ticket r from the same weights for as many epochs as a retraining would)."""
    return (config.method == "imp" and config.reuse_next_round and not config.supermask
            and config.rewind_epoch >= 0 and config.rewind_epoch == config.ticket_epoch
            and config.ticket_epochs == config.epochs and not config.keep_optimizer_state)


def ticket_from_next_round(run, round_index):
    """IMP with rewinding: ticket r (the mask after round r's pruning) is what round r+1
    trained from `w_k` for `epochs` epochs, so its accuracy is round r+1's test accuracy
    before that round pruned; no epoch is trained again. Returns it."""
    record = run.results["rounds"][round_index - 1]
    if ticket_done(record):
        return record["ticket_accuracy"]
    following = run.results["rounds"][round_index]
    record.update(ticket_accuracy=following["search_accuracy"], ticket_epochs_trained=0,
                  ticket_source=f"round_{round_index + 1}", ticket_wall_time_s=0.0,
                  ticket_history=following.get("history", []))  # the training that was it
    run.run_dir.write_results(run.results)
    run.trainer.write_scalars("summary", round_index,
                              {"summary/ticket_accuracy": record["ticket_accuracy"]})
    _log_round(run, record)
    return record["ticket_accuracy"]


def retrain_ticket(run, round_index):
    """Ticket r from its start weights (supermask: evaluated as is); the last round's is
    exported. Returns its test accuracy (None when tickets are not retrained)."""
    config, record, trainer = run.config, run.results["rounds"][round_index - 1], run.trainer
    if ticket_done(record):
        return record["ticket_accuracy"]
    masks = tickets.load_masks(run.run_dir.masks_path(round_index))
    accuracy, ticket, started, history = None, None, time.time(), []
    phase = f"round_{round_index}_ticket"
    if config.supermask:
        ticket = trainer.ticket_model(masks, run.initial_weights)
        accuracy, _ = trainer.evaluate(ticket)
    elif config.ticket_epochs:
        log(f"round {round_index}/{config.rounds}: retraining the ticket")
        ticket = trainer.ticket_model(masks, run.round_manager.ticket_weights)
        history = trainer.fit(ticket, config.ticket_epochs, trainer.tensorboard(phase), phase,
                              stream=2 * round_index + 1)
        accuracy, _ = trainer.evaluate(ticket)
        trainer.write_scalars(phase, config.ticket_epochs, {"test/accuracy": accuracy})
    if accuracy is not None and run.chief:
        report = tickets.export(ticket, run.run_dir.ticket_dir(round_index))
        if round_index == config.rounds:  # ticket/ holds the last round's too
            io_utils.copy_files(run.run_dir.ticket_dir(round_index), run.run_dir.ticket_dir())
        record["ticket_report"] = {k: v for k, v in report.items() if k != "layers"}
    record.update(ticket_accuracy=accuracy, ticket_source="retrained",
                  ticket_epochs_trained=config.ticket_epochs if accuracy is not None
                  and not config.supermask else 0,
                  ticket_wall_time_s=round(time.time() - started, 1), ticket_history=history)
    run.run_dir.write_results(run.results)
    trainer.write_scalars("summary", round_index, {"summary/ticket_accuracy": accuracy})
    run.run_dir.clear_phase(phase)
    _log_round(run, record)
    return accuracy


def _log_round(run, record):
    config, accuracy = run.config, record["ticket_accuracy"]
    ticket_text = "not retrained" if accuracy is None else f"{accuracy:.4f}"
    if record.get("ticket_source", "retrained") != "retrained":
        ticket_text += f" (trained in {record['ticket_source'].replace('_', ' ')})"
    log(f"{'dry run: ' if run.dry_run else ''}round {record['round']}/{config.rounds} "
        f"({config.method}): remaining {record['remaining']:.2%}, search accuracy "
        f"{record['search_accuracy']:.4f}, ticket accuracy {ticket_text}, "
        f"{record['epochs']} search epochs, {record['wall_time_s']}s")
