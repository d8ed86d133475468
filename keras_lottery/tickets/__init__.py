"""Room `tickets`: what a search hands over, and the conversions of plain Keras models.

    masks         extract_masks, save_masks, load_masks, apply_masks, remaining_fraction
    ticket_model  build_ticket: the searched model with its masks fixed, from w_0 or w_k
    snapshots     weight snapshots (w_0, the rewind point w_k) and their files
    convert       sparsify (plain -> masked) and strip (masked -> plain, w * b(s))
    shrinking     shrink: the ticket without its removed units, a smaller plain model
    shrink_plan   shrink's plan on numpy arrays (what each layer keeps); unit_plan: its dry run
    hub_unroll    a keras-hub model's transformer blocks as Keras layers (what shrink walks)
    generation    generate: greedy continuation for a causal LM without its own (shrunk GPT-2)
    export        size_report and export (stripped .keras, masks, report)
    tflite        export_tflite (block tickets stay sparse) and TFLiteModel (ai-edge-litert)
    deployment    export_deployment (shrunk.keras, .tflite, measured speedups), load_deployed
    deployed_cost DeployedCost: the MACs or parameters a ticket deploys at, counted fast
    cuts          ranking mask groups and keeping the best that fit (shared by the cuts below)
    budgets       BudgetTarget, cut_learned, prune_to_budget: tickets to a budget

A search's run directory gives its tickets back with `keras_lottery.load_run` (the
`search` room's: `tickets.load_run` was an alias that imported a room above this one).
May import: `layers`, `methods`, `saving`, `compat`, `io_utils`.
"""

from keras_lottery.tickets.budgets import BudgetTarget
from keras_lottery.tickets.convert import sparsify, strip
from keras_lottery.tickets.deployed_cost import DeployedCost
from keras_lottery.tickets.export import export, size_report
from keras_lottery.tickets.generation import generate
from keras_lottery.tickets.masks import (
    apply_masks,
    extract_masks,
    load_masks,
    remaining_fraction,
    save_masks,
)
from keras_lottery.tickets.shrinking import ShrinkError, shrink
from keras_lottery.tickets.tflite import TFLiteModel, export_tflite
from keras_lottery.tickets.ticket_model import build_ticket

__all__ = ["BudgetTarget", "DeployedCost", "ShrinkError", "TFLiteModel", "apply_masks",
           "build_ticket", "export", "export_tflite", "extract_masks", "generate", "load_masks",
           "remaining_fraction", "save_masks", "shrink", "size_report", "sparsify", "strip"]


def __getattr__(name):
    if name in ("load_run", "RunTicket"):  # an alias that imported the `search` room
        raise AttributeError(f"keras_lottery.tickets.{name} moved: use keras_lottery.{name} "
                             f"(keras_lottery.search.{name}).")
    raise AttributeError(f"module 'keras_lottery.tickets' has no attribute {name!r}")
