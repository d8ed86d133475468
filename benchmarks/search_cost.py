"""Search cost: training epochs until a ticket is both sparse and as accurate as the dense net.

Reads the `results.json` of finished searches (any method) and, for each,
finds the first round whose ticket keeps at most `--max_remaining` of the
weights (default 10%, i.e. >= 90% sparsity) with test accuracy within
`--tolerance` (default 0.5 points) of the dense network. It reports the search
epochs spent up to that round and, separately, the epochs that retrain that
ticket, then the ratio of each run's cost to the first `--baseline` run's.
The dense accuracy is the `dense` record of any run given (`--dense_baseline`)
unless `--dense_accuracy` is set.

    python3 -m benchmarks.search_cost runs/imp_lenet300_fashion runs/quickstart \\
        runs/target_1round --baseline=imp
"""

import argparse
import json
import os
import sys


def load(run_dir):
    path = os.path.join(run_dir, "results.json")
    try:
        with open(path) as handle:
            return json.load(handle)
    except (OSError, ValueError) as error:
        raise SystemExit(f"search_cost: cannot read {path}: {error}") from None


def dense_accuracy(results_list, given):
    if given:
        return given
    for results in results_list:
        if results.get("dense"):
            return float(results["dense"]["test_accuracy"])
    raise SystemExit("search_cost: no run has a dense baseline; pass --dense_accuracy=A")


def first_good_round(results, dense, max_remaining, tolerance):
    """The first round record whose ticket is sparse and accurate enough, or None."""
    for record in results["rounds"]:
        accuracy = record.get("ticket_accuracy")
        if (record["remaining"] <= max_remaining and accuracy is not None
                and accuracy >= dense - tolerance):
            return record
    return None


def cost_table(run_dirs, max_remaining=0.10, tolerance=0.005, dense=None):
    """One row per run: method, round, remaining, accuracy, search and ticket epochs."""
    results_list = [load(run_dir) for run_dir in run_dirs]
    dense = dense_accuracy(results_list, dense)
    rows = []
    for run_dir, results in zip(run_dirs, results_list):
        flags = results["flags"]
        record = first_good_round(results, dense, max_remaining, tolerance)
        row = {"run": run_dir, "method": flags["method"], "dense_accuracy": dense}
        if record is not None:
            row.update(round=record["round"], remaining=record["remaining"],
                       ticket_accuracy=record["ticket_accuracy"], search_epochs=record["epochs"],
                       ticket_epochs=flags["ticket_epoch"] + flags["ticket_epochs"])
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dirs", nargs="+")
    parser.add_argument("--max_remaining", type=float, default=0.10)
    parser.add_argument("--tolerance", type=float, default=0.005)
    parser.add_argument("--dense_accuracy", type=float, default=None)
    parser.add_argument("--baseline", default="imp", help="method whose cost is the ratios' base")
    args = parser.parse_args(argv)
    rows = cost_table(args.run_dirs, args.max_remaining, args.tolerance, args.dense_accuracy)
    print(f"command: python3 -m benchmarks.search_cost {' '.join(sys.argv[1:])}")
    print(f"dense accuracy {rows[0]['dense_accuracy']:.4f}; a ticket counts at <= "
          f"{args.max_remaining:.0%} remaining and >= dense - {args.tolerance:.3f}")
    base = next((row for row in rows if row["method"] == args.baseline and "round" in row), None)
    for row in rows:
        if "round" not in row:
            print(f"{row['run']:40s} {row['method']:4s} never reached such a ticket")
            continue
        ratio = ""
        if base is not None:
            ratio = (f"  search-epoch ratio {row['search_epochs'] / base['search_epochs']:.3f}"
                     f"  with retraining {(row['search_epochs'] + row['ticket_epochs']) / (base['search_epochs'] + base['ticket_epochs']):.3f}")
        print(f"{row['run']:40s} {row['method']:4s} round {row['round']:2d}  "
              f"remaining {row['remaining']:.2%}  ticket {row['ticket_accuracy']:.4f}  "
              f"search epochs {row['search_epochs']:4d} (+{row['ticket_epochs']} retraining)"
              + ratio)
    return rows


if __name__ == "__main__":
    main()
