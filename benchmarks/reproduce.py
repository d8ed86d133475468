"""Every run behind REPRODUCTION.md and docs/figures, 3 seeds each, then the figures: one command.

    python3 -m benchmarks.reproduce [--runs=runs/evidence] [--figures=docs/figures] [--only=lenet]

Groups of settings (each setting is one `apps.search --seeds=0,1,2` command, printed as it
starts; finished runs are not run again, so the command continues after an interruption):
- `lenet`: Fashion-MNIST LeNet-300-100, CS (the quickstart, and at three more s0) against IMP and
  ISS (their flagfiles);
- `matched`: our CS at the official CS layer's sparsities (10.1% and 3.06%, `--target_remaining`),
  inputs in [0, 1] (our default) and standardized;
- `ablation`: the official CS code's options one by one and all together
  (`benchmarks.official_ablation`).
Then `apps.report` writes `FIGURES/` (lenet) and `FIGURES/official/` (matched and ablation).
On 2 CPU cores: lenet ~1 h, matched ~30 min, ablation ~1.5 h.
"""

import argparse
import os
import subprocess
import sys

from benchmarks import official_ablation

MATCHED = ["--flagfile=apps/flags/quickstart.cfg", "--mask_penalty=1e-7", "--nodense_baseline"]
GROUPS = {
    "lenet": {
        "cs": ["--flagfile=apps/flags/quickstart.cfg"],
        "imp": ["--flagfile=apps/flags/imp_lenet300_fashion.cfg"],
        "iss": ["--flagfile=apps/flags/iss_lenet300_fashion.cfg"],
        # The quickstart at other s0: with "cs" (s0 = -0.01), the paper's Fig. 3 style.
        **{f"cs_s0_{s0}": ["--flagfile=apps/flags/quickstart.cfg", f"--mask_init={s0}"]
           for s0 in ("0.01", "-0.02", "-0.03")},
    },
    "matched": {
        "unit_10pct": MATCHED + ["--mask_init=0", "--target_remaining=0.101"],
        "standardize_10pct": MATCHED + ["--mask_init=0", "--target_remaining=0.101",
                                        "--input_scaling=standardize"],
        "unit_3pct": MATCHED + ["--mask_init=-0.05", "--target_remaining=0.0306"],
        "standardize_3pct": MATCHED + ["--mask_init=-0.05", "--target_remaining=0.0306",
                                       "--input_scaling=standardize"],
    },
    "ablation": {name: official_ablation.BASE + flags
                 for name, flags in official_ablation.SETTINGS.items()},
}


def run_group(name, runs_dir, seeds):
    for setting, flags in GROUPS[name].items():
        command = [sys.executable, "-m", "apps.search", *flags, "--verbose=0",
                   f"--seeds={seeds}", f"--output_dir={os.path.join(runs_dir, name, setting)}"]
        print(" ".join(command[1:]), flush=True)
        subprocess.run(command, check=True)


def run_dirs(runs_dir, groups):
    found = []
    for group in groups:
        for setting in GROUPS[group]:
            directory = os.path.join(runs_dir, group, setting)
            if os.path.isdir(directory):
                found += sorted(os.path.join(directory, d) for d in os.listdir(directory)
                                if d.startswith("seed_"))
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="runs/evidence")
    parser.add_argument("--figures", default="docs/figures")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--only", default=",".join(GROUPS), help="groups to run")
    parser.add_argument("--report_only", action="store_true", help="draw from finished runs")
    args = parser.parse_args()
    groups = args.only.split(",")
    unknown = sorted(set(groups) - set(GROUPS))
    if unknown:
        raise SystemExit(f"--only: unknown groups {unknown}; expected some of {list(GROUPS)}")
    if not args.report_only:
        for group in groups:
            run_group(group, args.runs, args.seeds)
    for directories, out in ((run_dirs(args.runs, ["lenet"]), args.figures),
                             (run_dirs(args.runs, ["matched", "ablation"]),
                              os.path.join(args.figures, "official"))):
        if directories:
            subprocess.run([sys.executable, "-m", "apps.report", *directories, f"--out={out}",
                            "--notensorboard"], check=True)


if __name__ == "__main__":
    main()
