"""The steps of a lottery run. Each knows whether it is done (its record is in
`results.json`) and how to run; `plan` lists them in the order the runner takes them.

- `SearchRound(r)`: trains round r from its last checkpoint, evaluates the searched
  network, ends the round (`callbacks.end_round`: the ticket, the method's round-end step,
  the rewind) and records the ticket;
- `DenseBaseline()`: the dense network from `w_0`, as long as a ticket trains;
- `TicketFromNextRound(r)`: for a method that reuses round r+1's training as ticket r's
  retraining (pruning with rewinding), records it without training;
- `RetrainTicket(r)`: the ticket of round r from its start weights (the supermask:
  evaluated as it is); the last round's ticket is exported.

Every step reads and writes the run through a `SearchState` (`keras_lottery.search.state`).
"""

import time

import numpy as np

from keras_lottery import callbacks as cb
from keras_lottery import io_utils, tickets
from keras_lottery.search import bits as language_model
from keras_lottery.search import checkpoints, model_setup
from keras_lottery.search.config import budget_of
from keras_lottery.tickets import snapshots
from keras_lottery.tickets.budgets import budget_multiplier
from keras_lottery.tickets.deployed_cost import DeployedCost
from keras_lottery.tickets.deployment import export_deployment


class EmptyTicket(cb.TrainingDiverged):
    """A round's ticket keeps no weight: the run stops instead of recording it."""


def log(message):
    """One-line summaries; printed at every Keras verbosity (they are what a run reports)."""
    print(message, flush=True)


def plan(config, method):
    """The steps of the search `config`, in order: round r, the dense baseline after round 1,
    and ticket r (from round r+1's training when the method reuses it)."""
    reuse = method.reuses_next_round(config)
    steps = []
    for r in range(1, config.rounds + 1):
        steps.append(SearchRound(r))
        if r == 1:
            steps.append(DenseBaseline())
        if reuse and r > 1:
            steps.append(TicketFromNextRound(r - 1))
        if not reuse or r == config.rounds:
            steps.append(RetrainTicket(r))
    return steps


def ticket_done(record):
    """Whether round `record`'s ticket step has run (its accuracy may be None: not retrained)."""
    return "ticket_accuracy" in record


class SearchRound:
    """Round r: train, evaluate, end the round; records its ticket."""

    def __init__(self, round_index):
        self.round = round_index
        self.phase = f"round_{round_index}"

    def done(self, state):
        return len(state.results["rounds"]) >= self.round

    def _callbacks(self, state):
        config = state.config
        schedule = state.method.round_callbacks()
        if config.target_remaining:
            target = cb.round_targets(config.target_remaining, config.rounds)[self.round - 1]
            schedule.append(cb.TargetRemaining(target, start=config.target_start))
        budget = budget_of(config)
        if budget is not None and not state.method.ticket_after_round_end:
            schedule.append(cb.Budget(budget.round_target(self.round), budget.kind,
                                      rate=config.budget_rate, start=config.target_start,
                                      **budget.floor))
        offset = (self.round - 1) * config.epochs  # one timeline of cumulative search epochs
        logs = [cb.MaskSummaries(state.run_dir.tensorboard("search"),
                                 epoch_offset=offset)] if state.trainer.chief else []
        return schedule + logs + state.trainer.tensorboard("search", offset) + [
            state.round_manager]

    def run(self, state):
        config, trainer, run_dir = state.config, state.trainer, state.run_dir
        log(f"round {self.round}/{config.rounds}: searching")
        started = time.time()
        history = trainer.fit(state.model, config.epochs, self._callbacks(state), self.phase,
                              stream=2 * self.round)
        accuracy, task_loss = trainer.evaluate(state.model)  # the searched net, before its reset
        validation = trainer.validate(state.model)
        extra = state.method.evaluate_searched(config, state.model, _masked_accuracy(state))
        masks = state.round_manager.end_round()
        remaining = tickets.remaining_fraction(masks)
        budget = _budget_record(state, self.round, masks)
        if remaining == 0 and not trainer.dry_steps:  # (a dry run from s0 < 0 keeps nothing)
            raise EmptyTicket(
                f"round {self.round}'s ticket keeps no weight (--mask_init={config.mask_init}, "
                f"--mask_penalty={config.mask_penalty}); try a larger --mask_init or a smaller "
                f"--mask_penalty; finished rounds are kept in {run_dir.results_path}.")
        tickets.save_masks(run_dir.masks_path(self.round), masks)
        checkpoints.write(state.model, run_dir.round_model_path(self.round))
        state.results["rounds"].append({
            "round": self.round, "method": config.method, "remaining": remaining,
            "search_accuracy": accuracy, "search_loss": task_loss,
            **language_model.bits_record(config, "search", task_loss),
            "search_validation_accuracy": validation,
            "epochs": self.round * config.epochs, "supermask": config.supermask,
            "mask_penalty": model_setup.current_penalty(state.model, state.method),
            "remaining_per_layer": {name: float(m.mean()) for name, m in masks.items()},
            "wall_time_s": round(time.time() - started, 1),
            "history": history,  # per epoch: the Keras logs (accuracy, val_accuracy, ...)
            **({"budget": budget} if budget else {}),
            **extra,
        })
        run_dir.write_results(state.results)  # the commit point of the step
        trainer.write_scalars("summary", self.round, {
            "Results/remaining": remaining, "Results/search_accuracy": accuracy,
            **language_model.scalars(config, "search", task_loss),
            "Results/search_epochs": self.round * config.epochs,
            **({"Results/budget_target": budget["target"],
                "Results/budget_achieved": budget["achieved"]} if budget else {})})
        io_utils.remove_path(run_dir.round_model_path(self.round - 1))
        run_dir.clear_phase(self.phase)


def _budget_record(state, round_index, masks):
    """`{"kind", "target", "achieved", "multiplier"}` of round `round_index`'s ticket under
    the search's budget (None without one): what it aimed at and what it deploys at,
    counted by `DeployedCost` on the ticket `masks`."""
    budget = budget_of(state.config)
    if budget is None:
        return None
    cost = DeployedCost(state.model, budget.kind)
    record = {"kind": budget.kind, "target": budget.round_target(round_index),
              "final_target": budget.fraction, "achieved": cost.ticket_fraction(masks)}
    if state.method.uses_penalty:
        record["multiplier"] = budget_multiplier(cost.layers)
    return record


def _masked_accuracy(state):
    """`evaluate(masks)`: the test accuracy of the searched model's weights under fixed
    `masks` (one ticket model, built on the first call, serves every call)."""
    ticket = []

    def evaluate(masks):
        if not ticket:
            weights = snapshots.snapshot(state.model)
            ticket.append(state.trainer.ticket_model(state.model, masks, weights))
        tickets.apply_masks(ticket[0], masks)
        return state.trainer.evaluate(ticket[0])[0]

    return evaluate


class DenseBaseline:
    """The dense network (all-ones mask) from `w_0`, trained as long as a ticket sees from
    initialization (`ticket_epoch + ticket_epochs`)."""

    phase = "dense"

    def done(self, state):
        config = state.config
        return (state.results["dense"] is not None or not config.dense_baseline
                or config.supermask or config.ticket_epoch + config.ticket_epochs <= 0)

    def run(self, state):
        config, trainer = state.config, state.trainer
        epochs = config.ticket_epoch + config.ticket_epochs
        log("dense baseline: training")
        started = time.time()
        masks = tickets.load_masks(state.run_dir.masks_path(1))
        all_ones = {name: np.ones_like(mask) for name, mask in masks.items()}
        dense = trainer.ticket_model(state.model, all_ones, state.initial_weights)
        history = trainer.fit(dense, epochs, trainer.tensorboard("dense"), self.phase,
                              stream=0)
        accuracy, task_loss = trainer.evaluate(dense)
        bits = language_model.bits_record(config, "test", task_loss)
        trainer.write_scalars("dense", epochs, {"test/accuracy": accuracy})
        for round_index in range(1, config.rounds + 1):  # a reference line beside the rounds
            trainer.write_scalars("summary", round_index, {
                "Results/dense_accuracy": accuracy,
                **language_model.scalars(config, "dense", task_loss)})
        state.results["dense"] = {"remaining": 1.0, "test_accuracy": accuracy, **bits,
                                  "epochs": epochs,
                                  "wall_time_s": round(time.time() - started, 1),
                                  "history": history}
        state.run_dir.write_results(state.results)
        state.run_dir.clear_phase(self.phase)
        log(f"dense baseline: test accuracy {accuracy:.4f}"
            f"{language_model.bits_text(bits.get('test_bits_per_char'))} after {epochs} epochs")


class TicketFromNextRound:
    """Ticket r (the mask after round r's pruning) is what round r+1 trained from `w_k` for
    `epochs` epochs, so its accuracy is round r+1's test accuracy before that round pruned;
    no epoch is trained again."""

    def __init__(self, round_index):
        self.round = round_index

    def done(self, state):
        return ticket_done(state.results["rounds"][self.round - 1])

    def run(self, state):
        record = state.results["rounds"][self.round - 1]
        following = state.results["rounds"][self.round]
        bits = language_model.bits_record(state.config, "ticket", following.get("search_loss"))
        record.update(ticket_accuracy=following["search_accuracy"], ticket_epochs_trained=0,
                      **bits,
                      ticket_validation_accuracy=following.get("search_validation_accuracy"),
                      ticket_source=f"round_{self.round + 1}", ticket_wall_time_s=0.0,
                      ticket_history=following.get("history", []))  # the training that was it
        state.run_dir.write_results(state.results)
        state.trainer.write_scalars("summary", self.round, {
            "Results/ticket_accuracy": record["ticket_accuracy"],
            **language_model.summary_scalars(bits),
            "Results/ticket_validation_accuracy": record["ticket_validation_accuracy"]})
        log_round(state, record)


class RetrainTicket:
    """Ticket r from its start weights (supermask: evaluated as is); the last round's is
    exported."""

    def __init__(self, round_index):
        self.round = round_index
        self.phase = f"round_{round_index}_ticket"

    def done(self, state):
        return ticket_done(state.results["rounds"][self.round - 1])

    def _train(self, state, masks):
        """`(ticket model, (its test accuracy, its test task loss), its history)`; accuracy
        None: not retrained."""
        config, trainer = state.config, state.trainer
        if config.supermask:
            ticket = trainer.ticket_model(state.model, masks, state.initial_weights)
            return ticket, trainer.evaluate(ticket), []
        if not config.ticket_epochs:
            return None, (None, None), []
        log(f"round {self.round}/{config.rounds}: retraining the ticket")
        ticket = trainer.ticket_model(state.model, masks, state.round_manager.ticket_weights)
        offset = (self.round - 1) * config.ticket_epochs  # the tickets' own timeline
        history = trainer.fit(ticket, config.ticket_epochs, trainer.tensorboard("tickets", offset),
                              self.phase, stream=2 * self.round + 1)
        accuracy, task_loss = trainer.evaluate(ticket)
        trainer.write_scalars("tickets", offset + config.ticket_epochs,
                              {"test/accuracy": accuracy})
        return ticket, (accuracy, task_loss), history

    def run(self, state):
        config, run_dir = state.config, state.run_dir
        record = state.results["rounds"][self.round - 1]
        started = time.time()
        ticket, (accuracy, task_loss), history = self._train(state, tickets.load_masks(
            run_dir.masks_path(self.round)))
        bits = language_model.bits_record(config, "ticket", task_loss)
        if accuracy is not None and state.trainer.chief:
            report = tickets.export(ticket, run_dir.ticket_dir(self.round))
            if config.deployment and not state.trainer.dry_steps:
                record["deployment"] = export_deployment(
                    ticket, run_dir.ticket_dir(self.round), repeats=config.latency_repeats,
                    batch_sizes=config.latency_batch_sizes,
                    generate=language_model.generated_characters(config))
            if self.round == config.rounds:  # ticket/ holds the last round's too
                io_utils.copy_files(run_dir.ticket_dir(self.round), run_dir.ticket_dir())
            record["ticket_report"] = {k: v for k, v in report.items() if k != "layers"}
        trained = config.ticket_epochs if accuracy is not None and not config.supermask else 0
        record.update(ticket_accuracy=accuracy, ticket_source="retrained", **bits,
                      ticket_validation_accuracy=None if ticket is None
                      else state.trainer.validate(ticket),
                      ticket_epochs_trained=trained, ticket_history=history,
                      ticket_wall_time_s=round(time.time() - started, 1))
        run_dir.write_results(state.results)
        state.trainer.write_scalars("summary", self.round, {
            "Results/ticket_accuracy": accuracy, **language_model.summary_scalars(bits),
            "Results/ticket_validation_accuracy": record["ticket_validation_accuracy"]})
        run_dir.clear_phase(self.phase)
        log_round(state, record)


def log_round(state, record):
    """The one line a finished round prints."""
    config, accuracy = state.config, record["ticket_accuracy"]
    ticket_text = "not retrained" if accuracy is None else f"{accuracy:.4f}"
    if record.get("ticket_source", "retrained") != "retrained":
        ticket_text += f" (trained in {record['ticket_source'].replace('_', ' ')})"
    log(f"{'dry run: ' if state.trainer.dry_steps else ''}round {record['round']}/"
        f"{config.rounds} ({config.method}): remaining {record['remaining']:.2%}, search "
        f"accuracy {record['search_accuracy']:.4f}, ticket accuracy {ticket_text}"
        f"{language_model.bits_text(record.get('ticket_bits_per_char'))}, "
        f"{record['epochs']} search epochs, {record['wall_time_s']}s")

