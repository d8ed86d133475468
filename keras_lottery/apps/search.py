"""Ticket search from the command line.

    python -m apps.search --flagfile=apps/flags/quickstart.cfg [--flag=value ...]

Every field of `keras_lottery.SearchConfig` is a flag; `--helpfull` lists them.
"""

import dataclasses
import os
import subprocess
import sys

from absl import app, flags

from keras_lottery import apps, methods, search
from keras_lottery.callbacks import TrainingDiverged
from keras_lottery.data import DataError
from keras_lottery.io_utils import DamagedFileError
from keras_lottery.report import load_runs, replicates, tables
from keras_lottery.search.config import GROUPS, ConfigError, SearchConfig, choices


def define_flags():
    """One flag per `SearchConfig` field, grouped by what it is about (`--helpfull` lists
    `search.method`, `search.schedule`, `search.data`, `search.run`); fields with a fixed set of
    values are enums, so the help lists them and absl refuses others while parsing."""
    group_of = {name: group for group, names in GROUPS.items() for name in names}
    enums = choices()
    for field in dataclasses.fields(SearchConfig):
        name, default = field.name, field.default
        options = dict(module_name=f"search.{group_of[name]}")
        help_text = SearchConfig.help_text(name)
        if name in enums:
            flags.DEFINE_enum(name, default, list(enums[name]), help_text, **options)
        elif isinstance(default, tuple):
            flags.DEFINE_list(name, [str(v) for v in default], help_text, **options)
        elif isinstance(default, bool):
            flags.DEFINE_boolean(name, default, help_text, **options)
        elif isinstance(default, int):
            flags.DEFINE_integer(name, default, help_text, **options)
        elif isinstance(default, float):
            flags.DEFINE_float(name, default, help_text, **options)
        else:
            flags.DEFINE_string(name, default, help_text, **options)


define_flags()
flags.DEFINE_list("seeds", [], module_name="search.run", help=(
    "Replicates: run this setting once per seed (e.g. 0,1,2; overrides --seed), each into "
    "<output_dir>/seed_<k>, then print the mean and spread over seeds."))
FLAGS = flags.FLAGS
#: This module as `python -m` names it, to start one search per seed.
MODULE = __spec__.name if __spec__ is not None and __spec__.name != "__main__" else "apps.search"


def unused_flags(flag_values, method_name):
    """The flags given (on the command line or in a flagfile) that `--method` does not read."""
    unused = methods.get(method_name).unused_settings(methods.settings())
    return [name for name in unused if flag_values[name].present]


def config_from_flags(flag_values=FLAGS, warn=True):
    """The `SearchConfig` the parsed flags describe; raises ConfigError on a malformed list.
    Flags the method does not read are named in one `warning:` line (with `warn`); a
    `--[no]mask_scaling` given with `--init_from` is honoured (otherwise CS turns it on)."""
    settings = {name: flag_values[name].value for name in SearchConfig.field_names()}
    unused = unused_flags(flag_values, settings["method"])
    if warn and unused:
        print(f"warning: --method={settings['method']} does not use "
              f"{', '.join('--' + name for name in unused)}; ignored.", file=sys.stderr)
    settings["unmasked_layers"] = tuple(settings["unmasked_layers"])
    for name in ("lr_decay_epochs", "latency_batch_sizes"):
        try:
            settings[name] = tuple(int(e) for e in settings[name])
        except ValueError:
            raise ConfigError(f"--{name}={','.join(settings[name])} is invalid: expected "
                              "comma-separated integers.") from None
    config = SearchConfig(**settings)
    for name in config.trained_model_overrides():  # the user's word over --init_from's
        if settings["init_from"] and flag_values[name].present:
            setattr(config, name, flag_values[name].value)
    return config


def config_flags(config):
    """`config` as command-line flags that describe it whole (`--name=value`, `--[no]name`),
    without the settings of other methods (ignored, and each would be warned of)."""
    arguments = []
    unused = set(methods.get(config.method).unused_settings(methods.settings()))
    for name, value in config.to_dict().items():
        if name in unused:
            continue
        if isinstance(value, bool):
            arguments.append(f"--{'' if value else 'no'}{name}")
        elif isinstance(value, list):
            arguments.append(f"--{name}={','.join(str(v) for v in value)}")
        else:
            arguments.append(f"--{name}={value}")
    return arguments


def run_seeds(config, seeds):
    """Runs `config` once per seed, each in its own process, into `<output_dir>/seed_<k>`;
    prints the setting's mean and spread over the seeds that finished. Returns the exit code:
    0, or the first failed seed's."""
    failed = 0
    run_dirs = []
    for seed in seeds:
        run_dir = os.path.join(config.output_dir, f"seed_{seed}")
        seeded = dataclasses.replace(config, seed=seed, output_dir=run_dir)
        print(f"seed {seed}: {run_dir}", flush=True)
        code = subprocess.run([sys.executable, "-m", MODULE, *config_flags(seeded)]).returncode
        if code:
            print(f"error: seed {seed} failed (exit {code}); the other seeds go on",
                  file=sys.stderr)
            failed = failed or code
        else:
            run_dirs.append(run_dir)
    if run_dirs and not config.dry_run and os.path.exists(
            os.path.join(run_dirs[0], "results.json")):
        print(tables.settings_table(replicates.group_runs(load_runs(run_dirs))))
    return failed


def parse_seeds(values):
    try:
        seeds = [int(value) for value in values]
    except ValueError:
        raise ConfigError(f"--seeds={','.join(values)} is invalid: expected comma-separated "
                          "integers, e.g. 0,1,2.") from None
    if len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds={','.join(values)} is invalid: a seed appears twice.")
    return seeds


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if FLAGS.seeds:
        try:
            seeds = parse_seeds(FLAGS.seeds)
            config = config_from_flags().validate()
        except ConfigError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        return run_seeds(config, seeds)
    try:
        config = config_from_flags()
        searcher = search.LotteryRunner(config)
        searcher.run()
    except (ConfigError, DataError, DamagedFileError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    except OSError as error:
        print(f"error: cannot write to --output_dir={FLAGS.output_dir!r}: "
              f"{error.strerror or error}; finished rounds, if any, are in its results.json.",
              file=sys.stderr)
        return 4
    if config.dry_run:
        return 0
    if searcher.chief:
        print(f"results: {os.path.join(config.output_dir, search.RESULTS_FILE)}")
    else:
        print(f"worker finished; the chief writes the results into {config.output_dir}")
    return 0


def parse_flags(argv):
    """absl's parsing, with a bad flag reported as one `error:` line (exit 2), like every other
    bad input: `error: flag --method=magic: value should be one of <cs|imp|iss|random>`."""
    try:
        return FLAGS(argv)
    except flags.Error as error:
        print(f"error: {error}\nPass --helpfull to see every flag and its choices.",
              file=sys.stderr)
        sys.exit(2)


def run_main():
    """Console-script entry point (`keras-lottery-search`)."""
    apps.run(main, __doc__, flags_parser=parse_flags)


if __name__ == "__main__":
    run_main()
