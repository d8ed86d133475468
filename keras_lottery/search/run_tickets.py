"""`load_run`: a search's tickets back from its run directory, ready to retrain."""

import json
import os

from keras_lottery.search.config import SearchConfig
from keras_lottery.search.model_setup import build_model
from keras_lottery.search.run_directory import RunDirectory
from keras_lottery.tickets import build_ticket, load_masks, snapshots


class RunTicket:
    """Round r's ticket of a run directory (`load_run`).

    Attributes:
        model: the ticket model: the run's architecture with round r's masks fixed
            (`mask_rule="fixed"`), its weights at `start_weights`; not compiled.
        masks: `{layer key: bool array}` (`masked_layers_by_key`), round r's `b(s)`.
        start_weights: the snapshot the run retrains tickets from (`w_k`, k =
            `--ticket_epoch`; `w_0` when k = 0).
        initial_weights: `w_0`.
        config: the run's `SearchConfig`; record: round r's record in `results.json`.
    """

    def __init__(self, model, masks, start_weights, initial_weights, config, record):
        self.model, self.masks = model, masks
        self.start_weights, self.initial_weights = start_weights, initial_weights
        self.config, self.record = config, record


def load_run(run_dir, round=None):  # noqa: A002  (the paper's word for it)
    """Rebuilds round `round`'s ticket (default: the last finished round) of a search's run
    directory: the model with its masks and the weights it is retrained from.

        ticket = keras_lottery.search.load_run("runs/quickstart", round=2)
        ticket.model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        ticket.model.fit(...)   # round 2's ticket, retrained later

    Raises a one-line `FileNotFoundError` naming what is missing.
    """
    directory = RunDirectory(run_dir)
    try:
        with open(directory.results_path) as handle:
            results = json.load(handle)
    except OSError:
        raise FileNotFoundError(f"{run_dir!r} holds no results.json: not a finished or "
                                "running search directory.") from None
    finished = [record["round"] for record in results["rounds"]]
    round_index = finished[-1] if round is None and finished else round
    if round_index not in finished:
        raise FileNotFoundError(f"{run_dir!r} has no round {round!r}; its finished rounds are "
                                f"{finished}.")
    config = SearchConfig.from_dict(results["flags"])
    shape = results.get("model")
    if shape is None:
        raise FileNotFoundError(f"{run_dir!r} was written before runs recorded their model's "
                                "input shape; rerun the search to rebuild its tickets.")
    paths = {"w_0": directory.initial_weights_path(),
             "masks": directory.masks_path(round_index),
             "start": directory.snapshot_path(config.ticket_epoch)}
    missing = [f"{name} ({path})" for name, path in paths.items()
               if not os.path.exists(path) and not (name == "start" and config.ticket_epoch == 0)]
    if missing:
        raise FileNotFoundError(f"{run_dir!r} lacks {', '.join(missing)}.")
    initial = snapshots.load_snapshot(paths["w_0"])
    start = initial if config.ticket_epoch == 0 else snapshots.load_snapshot(paths["start"])
    masks = load_masks(paths["masks"])
    searched = build_model(config, tuple(shape["input_shape"]), shape["num_classes"],
                           shape.get("vocabulary_size"))
    model = build_ticket(searched, masks, start)
    return RunTicket(model, masks, start, initial, config,
                     results["rounds"][finished.index(round_index)])
