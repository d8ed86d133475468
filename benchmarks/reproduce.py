"""Every run behind REPRODUCTION.md and docs/figures, 3 seeds each, then the figures: one command.

    python3 -m benchmarks.reproduce [--runs=runs/evidence] [--figures=docs/figures] [--only=lenet]

Groups of settings (each setting is one `apps.search --seeds=0,1,2` command, printed as it
starts; finished runs are not run again, so the command continues after an interruption):
- `lenet`: Fashion-MNIST LeNet-300-100, CS (the quickstart, and at three more s0) against IMP and
  ISS (their flagfiles), and IMP with the reference protocol (40 epochs a round, rewind to w_0);
- `matched`: our CS at the official CS layer's sparsities (10.1% and 3.06%, `--target_remaining`),
  inputs in [0, 1] (our default) and standardized;
- `ablation`: the official CS code's options one by one and all together
  (`benchmarks.official_ablation`);
- `conv`: Conv-2 on 5,000 Fashion-MNIST training images, the Conv-6 flagfiles' CS against IMP
  with 6 epochs a round instead of 40 (scaled to 2 cores);
- `supermask`: frozen LeNet-300-100 weights, CS at four lambda against SS at four s0, the
  supermask flagfiles with 10 epochs instead of 100.
Then `apps.report` writes `FIGURES/` (lenet), `FIGURES/official/` (matched and ablation),
`FIGURES/conv/` and `FIGURES/supermask/`.
On 2 CPU cores: lenet ~2 h, matched ~30 min, ablation ~1.5 h, conv ~2 h, supermask ~30 min.
"""

import argparse
import os
import subprocess
import sys

from benchmarks import official_ablation

MATCHED = ["--flagfile=apps/flags/quickstart.cfg", "--mask_penalty=1e-7", "--nodense_baseline"]
CONV = ["--model=conv2", "--train_examples=5000", "--validation_examples=1000", "--epochs=6",
        "--ticket_epochs=6"]
SUPERMASK = ["--model=lenet300_100", "--epochs=10", "--steps_per_execution=10"]
GROUPS = {
    "lenet": {
        "cs": ["--flagfile=apps/flags/quickstart.cfg"],
        "imp": ["--flagfile=apps/flags/imp_lenet300_fashion.cfg"],
        "iss": ["--flagfile=apps/flags/iss_lenet300_fashion.cfg"],
        "imp_reference": ["--flagfile=apps/flags/imp_lenet300_fashion.cfg", "--rounds=14",
                          "--epochs=40", "--rewind_epoch=0", "--ticket_epoch=0",
                          "--ticket_epochs=40"],
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
    "conv": {
        "cs": ["--flagfile=apps/flags/cs_conv6_fashion.cfg", *CONV, "--rounds=3"],
        **{f"cs_s0_{s0}": ["--flagfile=apps/flags/cs_conv6_fashion.cfg", *CONV, "--rounds=3",
                           f"--mask_init={s0}"] for s0 in ("-0.01", "-0.03")},
        "imp": ["--flagfile=apps/flags/imp_conv6_fashion.cfg", *CONV, "--rounds=10"],
    },
    "supermask": {
        **{f"cs_lambda_{penalty}": ["--flagfile=apps/flags/cs_supermask_conv6_fashion.cfg",
                                    *SUPERMASK, f"--mask_penalty={penalty}"]
           for penalty in ("1e-6", "1e-5", "3e-5", "1e-4")},
        **{f"ss_s0_{s0}": ["--flagfile=apps/flags/ss_supermask_conv6_fashion.cfg", *SUPERMASK,
                           f"--mask_init={s0}"] for s0 in ("0", "-1", "-2", "-3")},
    },
}
# Where each group's figures go, under --figures.
FIGURE_DIRS = {"lenet": "", "matched": "official", "ablation": "official", "conv": "conv",
               "supermask": "supermask"}


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
    for figure_dir in dict.fromkeys(FIGURE_DIRS.values()):
        directories = run_dirs(args.runs, [g for g in GROUPS if FIGURE_DIRS[g] == figure_dir])
        out = os.path.join(args.figures, figure_dir) if figure_dir else args.figures
        if directories:
            subprocess.run([sys.executable, "-m", "apps.report", *directories, f"--out={out}",
                            "--notensorboard"], check=True)


if __name__ == "__main__":
    main()
