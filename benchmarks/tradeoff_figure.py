"""A figure of ticket quality against measured speedup from a table of means and spreads.

`apps.report` draws this figure from run directories (`report.deployment_figures`); this
script draws it from a CSV of the numbers REPRODUCTION.md reports (mean and sample standard
deviation over seeds), for evidence whose runs are not kept. One panel per runtime: the
quality (test bits/char, or accuracy) against the speedup over dense, one marker per method,
error bars both ways, the dense value as a line, and optionally the tolerance band and the
speedup target of the issue.

The CSV has a header row: `label,method,quality,quality_spread,<runtime>,<runtime>_spread,...`
(a runtime's columns empty where a ticket was not timed; the `method` groups markers).

    python3 -m benchmarks.tradeoff_figure --csv=docs/figures/kjv_chars/tradeoff.csv \\
        --quality="test bits/char (lower is better)" --dense=2.782 --tolerance=0.05 \\
        --target=2.5 --out=docs/figures/kjv_chars/tradeoff.png
"""

import argparse
import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from keras_lottery import io_utils  # noqa: E402

_MARKERS = "osD^vP*X"


def read_rows(path):
    """`(rows, runtimes)`: the CSV's rows as dicts and the runtime columns it has."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        sys.exit(f"error: --csv={path!r} has no rows")
    fixed = {"label", "method", "quality", "quality_spread"}
    missing = sorted(fixed - set(rows[0]))
    if missing:
        sys.exit(f"error: --csv={path!r} lacks the columns {missing}")
    runtimes = [c for c in rows[0] if c not in fixed and not c.endswith("_spread")]
    return rows, runtimes


def _number(text):
    return float(text) if text not in (None, "") else None


def draw(rows, runtimes, quality, dense=None, tolerance=None, target=None):
    """The figure: one panel per runtime (see the module)."""
    figure, axes = plt.subplots(1, len(runtimes), figsize=(5.5 * len(runtimes), 4.2),
                                squeeze=False)
    methods = list(dict.fromkeys(row["method"] for row in rows))
    for axis, runtime in zip(axes[0], runtimes):
        for index, method in enumerate(methods):
            points = [(row, _number(row[runtime])) for row in rows
                      if row["method"] == method and _number(row[runtime]) is not None]
            if not points:
                continue
            axis.errorbar([x for _, x in points], [_number(r["quality"]) for r, _ in points],
                          xerr=[_number(r.get(f"{runtime}_spread")) or 0 for r, _ in points],
                          yerr=[_number(r["quality_spread"]) or 0 for r, _ in points],
                          fmt=_MARKERS[index % len(_MARKERS)], capsize=3, label=method)
            for row, x in points:
                axis.annotate(row["label"], (x, _number(row["quality"])), fontsize=7,
                              xytext=(4, 4), textcoords="offset points")
        if dense is not None:
            axis.axhline(dense, color="gray", linestyle="--", linewidth=1, label="dense")
            if tolerance:
                axis.axhspan(dense - tolerance, dense + tolerance, color="gray", alpha=0.15,
                             label=f"dense ± {tolerance:g}")
        if target:
            axis.axvline(target, color="tab:red", linestyle=":", linewidth=1,
                         label=f"target {target:g}x")
        axis.set_xlabel(f"speedup over dense, {runtime.replace('_', ' ')}")
        axis.set_ylabel(quality)
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return figure


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", required=True)
    parser.add_argument("--quality", default="test accuracy")
    parser.add_argument("--dense", type=float, default=None)
    parser.add_argument("--tolerance", type=float, default=None)
    parser.add_argument("--target", type=float, default=None)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    rows, runtimes = read_rows(args.csv)
    if not runtimes:
        sys.exit(f"error: --csv={args.csv!r} has no speedup columns")
    figure = draw(rows, runtimes, args.quality, args.dense, args.tolerance, args.target)
    io_utils.atomic_write(args.out, lambda path: figure.savefig(path, dpi=130), suffix=".png")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
