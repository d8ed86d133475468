"""Every bad input gets a one-line error naming the value, a nonzero exit and no traceback."""

import gzip
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--rounds=1", "--epochs=1", "--ticket_epoch=0", "--ticket_epochs=0",
         "--nodense_baseline", "--validation_examples=200", "--verbose=0"]


def _main(argv):
    """Runs `python -m apps.search` as a user would: a traceback would reach its stderr."""
    done = subprocess.run([sys.executable, "-m", "apps.search"] + argv, cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return done.returncode, done.stderr


@pytest.fixture
def truncated_dir(idx_dir, tmp_path):
    path = os.path.join(idx_dir, "train-images-idx3-ubyte.gz")
    with gzip.open(path) as handle:
        raw = handle.read()
    directory = tmp_path / "truncated"
    directory.mkdir()
    for name in os.listdir(idx_dir):
        if not name.endswith(".gz"):
            continue
        (directory / name).write_bytes(open(os.path.join(idx_dir, name), "rb").read())
    with gzip.open(directory / "train-images-idx3-ubyte.gz", "wb") as handle:
        handle.write(raw[:-500])
    return str(directory)


CASES = [
    ("unknown method", ["--method=magic"], "--method=magic: value should be one of <cs|imp|iss|random>"),
    ("unknown model", ["--model=alexnet"], "--model=alexnet: value should be one of <conv2|"),
    ("unknown dataset", ["--dataset=imagenet"], "--dataset=imagenet: value should be one of"),
    ("negative lambda", ["--mask_penalty=-1e-6"], "--mask_penalty=-1e-06 is invalid"),
    ("s0 not finite", ["--mask_init=nan"], "--mask_init=nan is invalid"),
    ("s0 saturated", ["--mask_init=-50"], "--mask_init=-50.0 is invalid: the mask would start "
                                          "saturated (no gradient); s0 must lie in [-10, 10]"),
    ("beta_T <= beta_0", ["--final_temperature=1"], "--final_temperature=1.0 is invalid"),
    ("zero rounds", ["--rounds=0"], "--rounds=0 is invalid"),
    ("zero epochs", ["--epochs=0"], "--epochs=0 is invalid"),
    ("zero batch", ["--batch_size=0"], "--batch_size=0 is invalid"),
    ("rewind past round", ["--rewind_epoch=5"], "--rewind_epoch=5 is invalid"),
    ("prune fraction 1", ["--method=imp", "--prune_fraction=1.5"], "--prune_fraction=1.5 is invalid"),
    ("bad lr decay list", ["--lr_decay_epochs=a,b"], "--lr_decay_epochs=a,b is invalid"),
    ("budget above 1", ["--target_macs=1.5"], "--target_macs=1.5 is invalid: must be a fraction in (0, 1]"),
    ("two budgets", ["--target_macs=0.5", "--target_parameters=0.5"], "give one budget"),
    ("budget and target", ["--target_macs=0.5", "--target_remaining=0.1"], "--target_remaining already sets"),
    ("missing data dir", ["--data_dir=/nonexistent/fashion"], "'/nonexistent/fashion' does not exist"),
    ("truncated idx", "TRUNCATED", "is truncated or corrupt"),
    ("unwritable output", ["--output_dir=/proc/keras_lottery_run"], "cannot write to --output_dir"),
]


def _main_in_process(argv, capsys):
    """The app's own parsing and `main` in this process (an exception would fail the test, as
    a traceback would in a real process); returns the exit code and stderr."""
    from keras_lottery.apps import search as app

    app.FLAGS.unparse_flags()
    try:
        code = app.main(app.parse_flags(["apps.search"] + argv))
    except SystemExit as exit_:
        code = exit_.code
    finally:
        app.FLAGS.unparse_flags()
    return code, capsys.readouterr().err


@pytest.mark.parametrize("name, argv, message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_clear_line(name, argv, message, idx_dir, truncated_dir, tmp_path,
                                     capsys):
    data_dir = truncated_dir if argv == "TRUNCATED" else idx_dir
    argv = [] if argv == "TRUNCATED" else argv
    base = [f"--data_dir={data_dir}", f"--output_dir={tmp_path / 'out'}"] + QUICK
    code, err = _main_in_process(base + argv, capsys)
    assert code == 2 or (code == 4 and name == "unwritable output")
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], err


@pytest.mark.parametrize("argv, message", [
    (["--method=magic"], "--method=magic: value should be one of"),
    (["--output_dir=/proc/keras_lottery_run"], "cannot write to --output_dir"),
])
def test_bad_input_in_a_real_process_is_one_line_without_traceback(argv, message, idx_dir):
    code, err = _main([f"--data_dir={idx_dir}"] + QUICK + argv)
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--flagfile=/nonexistent/settings.cfg"], "settings.cfg"),
    (["--flagfile=BAD_FLAGFILE"], "no_such_flag"),
])
def test_flag_parsing_errors_exit_without_traceback(argv, message, tmp_path):
    bad = tmp_path / "bad.cfg"
    bad.write_text("--rounds=1\n--no_such_flag=3\n")
    argv = [a.replace("BAD_FLAGFILE", str(bad)) for a in argv]
    done = subprocess.run([sys.executable, "-m", "apps.search"] + argv, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr


def test_helpfull_lists_the_choices_in_groups():
    from keras_lottery.search.config import GROUPS, SearchConfig

    grouped = [name for names in GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(SearchConfig.field_names())  # each field in one group
    done = subprocess.run([sys.executable, "-m", "apps.search", "--helpfull"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert "Traceback" not in done.stderr  # (absl exits 1 after printing the help)
    for line in ("search.method:", "search.schedule:", "search.data:", "search.run:",
                 "--method: <cs|imp|iss|random>", "--input_scaling: <standardize|unit>",
                 "--reset: <paper|official>", "<conv2|conv4|conv6|gpt_tiny|lenet300_100|"):
        assert line in done.stdout, line


def _guide_exit_codes():
    with open(os.path.join(ROOT, "docs", "guide.md")) as handle:
        guide = handle.read()
    table = guide[guide.index("| exit code | meaning |"):].split("\n\n")[0]
    return {int(row.split("|")[1]): row.split("|")[2].strip()
            for row in table.splitlines()[2:]}


def test_the_guide_gives_the_exit_codes_the_app_returns(tmp_path):
    codes = _guide_exit_codes()
    assert sorted(codes) == [0, 2, 3, 4]
    assert "bad input" in codes[2] and "diverged" in codes[3] and "written" in codes[4]
    # A flag absl cannot parse and a setting out of range: both "bad input".
    code, err = _main(["--no_such_flag=1"])
    assert code == 2 and "no_such_flag" in err
    code, err = _main(["--rounds=0", f"--output_dir={tmp_path}"])
    assert code == 2 and "--rounds=0 is invalid" in err


@pytest.mark.slow
def test_a_damaged_run_file_is_one_error_line_and_nothing_is_deleted(idx_dir, tmp_path):
    out = tmp_path / "run"
    base = [f"--data_dir={idx_dir}", f"--output_dir={out}"] + QUICK
    code, err = _main(base)
    assert code == 0, err
    snapshot = out / "state" / "snapshot_epoch_0.npz"
    snapshot.write_bytes(snapshot.read_bytes()[:100])  # cut short on disk
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    code, err = _main(base[:-len(QUICK)] + [a for a in QUICK if a != "--rounds=1"]
                      + ["--rounds=2"])
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert "snapshot_epoch_0.npz" in lines[0] and "damaged" in lines[0]
    assert "--overwrite" in lines[0]
    after = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert set(before) <= set(after)  # nothing deleted
