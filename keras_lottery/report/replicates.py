"""Replicates: runs that differ only in `--seed` are one setting, reported as mean and spread.

`group_runs` turns `(label, results)` pairs into `Setting`s; a setting's
`round_statistics` gives, per round, the mean and the spread of the remaining
fraction and of the accuracies over its seeds. The spread is the sample
standard deviation (`ddof=1`), as in "88.60 +- 0.46" over four runs; one run
has no spread (None).
"""

import dataclasses
import os

import numpy as np

#: Settings that do not change what a run computes (where it writes, how it shows
#: progress, how many devices share a step): runs differing only in these and in
#: `seed` are replicates of one setting.
NOT_A_SETTING = ("seed", "output_dir", "verbose", "overwrite", "dry_run", "distribute",
                 "steps_per_execution", "jit_compile", "deterministic", "data_dir")


def setting_key(flags):
    """What makes two runs the same setting: their flags without seed and run plumbing."""
    return tuple(sorted((k, repr(v)) for k, v in flags.items() if k not in NOT_A_SETTING))


def mean_and_spread(values):
    """`(mean, sample standard deviation)` of `values`; the spread is None for one value
    and both are None for none."""
    values = np.asarray([v for v in values if v is not None], dtype=float)
    if values.size == 0:
        return None, None
    spread = float(np.std(values, ddof=1)) if values.size > 1 else None
    return float(np.mean(values)), spread


#: Numbers of a ticket's `deployment` record the report averages over seeds: the speedups over
#: the dense network (Keras at batch 256, TFLite at batch 1) and the .tflite file's size
#: (a fraction of the dense file's).
DEPLOYMENT_KEYS = {"speedup_keras_256": ("speedup", "keras", "256"),
                   "speedup_keras_64": ("speedup", "keras", "64"),
                   "speedup_tflite_1": ("speedup", "tflite", "1"),
                   "tflite_size": ("file_bytes", "tflite", "dense_tflite")}


def _deployment_value(record, path):
    deployment = record.get("deployment") or {}
    if path[0] == "file_bytes":
        sizes = deployment.get("file_bytes") or {}
        return sizes[path[1]] / sizes[path[2]] if sizes.get(path[1]) and sizes.get(
            path[2]) else None
    value = deployment
    for part in path:
        value = value.get(part) if isinstance(value, dict) else None
    return value


@dataclasses.dataclass
class Setting:
    """One setting: its label and its runs (`(label, results)`), one per seed."""

    label: str
    runs: list
    _round_rows: list = dataclasses.field(default=None, init=False, repr=False, compare=False)

    @property
    def flags(self):
        return self.runs[0][1]["flags"]

    @property
    def method(self):
        return self.flags["method"]

    @property
    def supermask(self):
        return bool(self.flags.get("supermask"))

    @property
    def seeds(self):
        return [results["flags"].get("seed") for _, results in self.runs]

    def round_statistics(self):
        """Per round present in any seed: `{"round", "seeds", key: (mean, spread)}` for
        `remaining`, `ticket_accuracy`, `search_accuracy`, `epochs` and a language model's
        `ticket_bits_per_char` and `search_bits_per_char` (computed once: the
        table and every figure read them)."""
        if self._round_rows is None:
            self._round_rows = self._compute_round_statistics()
        return self._round_rows

    def _compute_round_statistics(self):
        by_round = {}
        for _, results in self.runs:
            for record in results["rounds"]:
                by_round.setdefault(record["round"], []).append(record)
        rows = []
        for number in sorted(by_round):
            records = by_round[number]
            row = {"round": number, "seeds": len(records)}
            for key in ("remaining", "ticket_accuracy", "search_accuracy", "epochs",
                        "ticket_bits_per_char", "search_bits_per_char"):  # (bits: text)
                row[key] = mean_and_spread([r.get(key) for r in records])
            for key, path in DEPLOYMENT_KEYS.items():
                row[key] = mean_and_spread([_deployment_value(r, path) for r in records])
            for key in ("target", "achieved"):  # a budget's (tickets.budgets)
                row[f"budget_{key}"] = mean_and_spread(
                    [(r.get("budget") or {}).get(key) for r in records])
            rows.append(row)
        return rows

    def epoch_statistics(self, key):
        """The search's per-epoch `key` (a Keras log such as `val_accuracy` or `remaining`)
        over the rounds as one timeline: `(epochs, means, spreads)` arrays over the seeds
        whose `results.json` has the rounds' `history` (empty arrays when none has)."""
        by_epoch = {}
        for _, results in self.runs:
            for record in results["rounds"]:
                offset = (record["round"] - 1) * self.flags.get("epochs", 0)
                for entry in record.get("history") or []:
                    if entry.get(key) is not None:
                        by_epoch.setdefault(offset + entry["epoch"], []).append(entry[key])
        epochs = sorted(by_epoch)
        statistics = [mean_and_spread(by_epoch[e]) for e in epochs]
        return (np.array(epochs, dtype=float),
                np.array([m for m, _ in statistics], dtype=float),
                np.array([np.nan if v is None else v for _, v in statistics], dtype=float))

    def dense_statistics(self):
        """`(mean, spread)` of the dense baseline's test accuracy over seeds, and its epochs;
        None when no seed trained one."""
        dense = [results["dense"] for _, results in self.runs if results.get("dense")]
        if not dense:
            return None
        return {"seeds": len(dense),
                "accuracy": mean_and_spread([d.get("test_accuracy") for d in dense]),
                "bits_per_char": mean_and_spread([d.get("test_bits_per_char") for d in dense]),
                "epochs": dense[0].get("epochs")}


def short_labels(directories):
    """The shortest path tails that tell the directories apart (`trial_3/run`, not `run` twice);
    directories with one parent get tails of one length (`ours/seed_2` beside `ours/seed_0`)."""
    parts = [os.path.normpath(directory).split(os.sep) for directory in directories]
    depths = [1] * len(parts)
    while True:
        labels = ["/".join(p[-d:]) for p, d in zip(parts, depths)]
        clashes = [i for i, label in enumerate(labels)
                   if labels.count(label) > 1 and depths[i] < len(parts[i])]
        for i in clashes:
            depths[i] += 1
        for i, part in enumerate(parts):
            siblings = [depths[j] for j, other in enumerate(parts) if other[:-1] == part[:-1]]
            depths[i] = min(max(siblings), len(part))
        if not clashes:
            return ["/".join(p[-d:]) for p, d in zip(parts, depths)]


def _seed_parent(directory):
    """The setting's directory of a lone run: `unit/seed_0` is labelled `unit`."""
    head, tail = os.path.split(os.path.normpath(directory))
    return head if tail.startswith("seed_") and head else directory


def group_runs(runs):
    """Groups `(label, results)` by setting, in the order settings first appear.

    A setting is labelled by its runs' common parent directory (`ablation/ours` for
    `ablation/ours/seed_0` ..., and for a lone `seed_<k>` run), or by its first run and the
    count of the others when that parent is shared with another setting. Directories are read from
    `results["run_dir"]` (set by `report.load_runs`), else the labels are used.
    """
    groups = {}
    for label, results in runs:
        groups.setdefault(setting_key(results["flags"]), []).append((label, results))
    members = list(groups.values())
    parents = []
    for runs_of_setting in members:
        directories = [results.get("run_dir", label) for label, results in runs_of_setting]
        parents.append(_seed_parent(directories[0]) if len(directories) == 1
                       else os.path.commonpath(directories) if all(
                           os.path.isabs(d) == os.path.isabs(directories[0]) for d in directories)
                       else "")
    labels = short_labels([parent or "." for parent in parents])
    settings = []
    for runs_of_setting, parent, label in zip(members, parents, labels):
        if not parent or parents.count(parent) > 1 or parent in ("/", "."):
            first, others = runs_of_setting[0][0], len(runs_of_setting) - 1
            label = f"{first} (+{others} seeds)" if others else first
        settings.append(Setting(label, runs_of_setting))
    return settings


def format_statistic(statistic, scale=100.0, digits=2):
    """`"88.60 +- 0.46"` (or `"88.60"` for one run, `"-"` for none)."""
    mean, spread = statistic
    if mean is None:
        return "-"
    text = f"{scale * mean:.{digits}f}"
    return text if spread is None else f"{text} ± {scale * spread:.{digits}f}"
