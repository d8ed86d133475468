"""What a search writes to TensorBoard besides the callbacks' logs: the results per round,
the search's HParams and the dashboard layout.

A search's TensorBoard directory holds four runs, one event file each per process:
- `search`: the rounds on one timeline (round 2 of 10-epoch rounds starts at epoch 10):
  `accuracy/train`, `accuracy/validation`, `loss/...` per cumulative epoch (`EpochScalars`),
  and `mask/...` (`MaskSummaries`: remaining, temperature and penalty per training step,
  histograms of `beta * s` per epoch);
- `tickets`: each round's retrained ticket, on a timeline of cumulative ticket epochs, with
  `test/accuracy` at its last epoch;
- `dense`: the dense baseline, with its `test/accuracy`;
- `summary`: per round r (step r) `Results/ticket_accuracy` (and its
  `Results/ticket_validation_accuracy`, what sweeps select on), `Results/search_accuracy`,
  `Results/remaining`, `Results/search_epochs`, and `Results/dense_accuracy` at every round
  (a reference line); the search's HParams with these as its metrics; the flags as a text
  table; and the custom scalars layout (`LAYOUT`): one chart per question, results first.
"""

import tensorflow as tf
from tensorboard.plugins.custom_scalar import layout_pb2
from tensorboard.plugins.custom_scalar import summary as custom_scalar_summary
from tensorboard.plugins.hparams import api as hparams_api

from keras_lottery.callbacks import summary_files

#: The HParams that define a search, shown first as `01_method`, ... (`hparam_name`).
FIRST_HPARAMS = ("method", "model", "dataset", "mask_granularity", "mask_init", "mask_penalty",
                 "initial_temperature", "final_temperature", "rounds", "epochs", "seed")
#: The search's metrics in the HParams tab: `(tag in the summary run, display name)`.
METRICS = (("Results/ticket_accuracy", "ticket test accuracy"),
           ("Results/remaining", "remaining fraction"),
           ("Results/search_accuracy", "search test accuracy"),
           ("Results/dense_accuracy", "dense test accuracy"),
           ("Results/search_epochs", "search epochs"),
           ("Results/ticket_validation_accuracy", "ticket validation accuracy (selection)"))


def _chart(title, *tags):
    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(tag=tags))


#: The custom scalars dashboard: the researcher's questions, the results first.
LAYOUT = layout_pb2.Layout(category=[
    layout_pb2.Category(title="Results per round (x: round; set smoothing to 0)", chart=[
        _chart("Test accuracy: ticket, searched network, dense network",
               r"^Results/(ticket|search|dense)_accuracy$"),
        _chart("Remaining fraction of the ticket", r"^Results/remaining$"),
        _chart("Search epochs so far", r"^Results/search_epochs$")]),
    layout_pb2.Category(title="The search", chart=[
        _chart("Remaining fraction (x: training step)", r"^mask/remaining$"),
        _chart("Remaining fraction per layer (x: training step)", r"^mask/remaining/"),
        _chart("Accuracy, train and validation (x: epoch; runs search, tickets, dense)",
               r"^accuracy/(train|validation)$"),
        _chart("Temperature beta (x: training step)", r"^mask/temperature$"),
        _chart("Penalty lambda * ||m||_1 (x: training step)", r"^mask/penalty$"),
        _chart("Mask groups settled outside |beta * s| <= 10 (x: epoch)", r"^mask/settled/")]),
])


class ScalarWriter:
    """Writes scalars into TensorBoard runs through the process's one writer per run."""

    def write(self, log_dir, step, values):
        """Writes `{tag: value}` (None skipped) at `step` into run `log_dir`, and flushes."""
        writer = summary_files.writer(log_dir)
        with writer.as_default(step=int(step)):
            for tag, value in values.items():
                if value is not None:
                    tf.summary.scalar(tag, float(value))
        writer.flush()

    def close(self):
        summary_files.close_all()


def hparam_name(flag):
    """A flag's name in the HParams tab: TensorBoard sorts HParams by name (those that differ
    between searches first) and shows the first few, so the ones that define a search are
    numbered in `FIRST_HPARAMS` order (`01_method`, `02_model`, ...); the rest keep their name."""
    if flag in FIRST_HPARAMS:
        return f"{FIRST_HPARAMS.index(flag) + 1:02d}_{flag}"
    return flag


def hparams_of(flags):
    """The flags HParams can hold (numbers, booleans, strings; lists as text), by
    `hparam_name`, in the order TensorBoard shows them."""
    values = {}
    for name, value in flags.items():
        if isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)
        if isinstance(value, (bool, int, float, str)):
            values[hparam_name(name)] = value
    return dict(sorted(values.items()))


def write_search_hparams(log_dir, flags):
    """Into the `summary` run `log_dir`: the search's HParams (declared in `FIRST_HPARAMS`
    order, with `METRICS`), its flags as a text table and the dashboard `LAYOUT`."""
    values = hparams_of(flags)
    with summary_files.writer(log_dir).as_default(step=0):
        hparams_api.hparams_config(
            hparams=[hparams_api.HParam(name) for name in values],
            metrics=[hparams_api.Metric(tag, display_name=name) for tag, name in METRICS])
        hparams_api.hparams(values)
        rows = "\n".join(f"| `--{name}` | `{value}` |" for name, value in sorted(flags.items()))
        tf.summary.text("flags", "| flag | value |\n|---|---|\n" + rows)
        tf.summary.experimental.write_raw_pb(
            custom_scalar_summary.pb(LAYOUT).SerializeToString(), step=0)
    summary_files.writer(log_dir).flush()
