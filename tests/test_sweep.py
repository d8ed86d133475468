"""A small keras-tuner sweep of ticket searches on a data set the test makes."""

import json
import os

import pytest

from keras_lottery import methods, search, sweep
from keras_lottery.callbacks import TrainingDiverged
from keras_lottery.search.config import SearchConfig


def _base(idx_dir):
    return SearchConfig(data_dir=idx_dir, validation_examples=200, rounds=1, epochs=1,
                        batch_size=100, ticket_epoch=0, ticket_epochs=1, dense_baseline=False,
                        verbose=0)


@pytest.mark.slow
def test_sweep_records_trials_failures_and_the_pareto_front(idx_dir, tmp_path, monkeypatch):
    original = search.run
    calls = []

    def run_and_fail_second(config):
        calls.append(config)
        if len(calls) == 2:
            raise TrainingDiverged("round 1 diverged (injected by the test)")
        return original(config)

    monkeypatch.setattr(search, "run", run_and_fail_second)
    summary = sweep.run_sweep(_base(idx_dir), str(tmp_path / "sweep"), max_trials=3, seed=1)
    statuses = sorted(t["status"] for t in summary["trials"])
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED"]
    # Each trial ran a whole search with its own s0, lambda and beta_T.
    assert len({(c.mask_init, c.mask_penalty) for c in calls}) == 3
    for config in calls:
        assert -0.05 <= config.mask_init <= 0.05 and 1e-8 <= config.mask_penalty <= 1e-5
    # The front holds only points that no sparser point beats on validation accuracy; the
    # test accuracy rides along and is never what ranks them.
    front = summary["pareto_front"]
    assert front and all(p in summary["points"] for p in front)
    for point in summary["points"]:
        assert 0 < point["validation_accuracy"] <= 1 and 0 < point["ticket_accuracy"] <= 1
        assert not any(q["remaining"] < point["remaining"] and
                       q["validation_accuracy"] >= point["validation_accuracy"] for q in front
                       if point in front)
    completed = [t for t in summary["trials"] if t["status"] == "COMPLETED"]
    assert all("ticket_validation_accuracy" in t and "ticket_accuracy" in t for t in completed)
    assert sweep.OBJECTIVE.name == "ticket_validation_accuracy"
    saved = json.load(open(tmp_path / "sweep" / "sweep.json"))
    assert saved["pareto_front"] == json.loads(json.dumps(front))
    for trial in completed:  # one HParams table: each trial's search wrote its session
        summary_run = tmp_path / "sweep" / f"trial_{trial['trial']}" / "run" / "tensorboard" / "summary"
        assert len(os.listdir(summary_run)) == 1
    # Running the sweep again continues it: no finished trial is redone.
    calls.clear()
    sweep.run_sweep(_base(idx_dir), str(tmp_path / "sweep"), max_trials=3, seed=1)
    assert calls == []


def test_sweep_rejects_unknown_tuner_and_no_validation_split(idx_dir, tmp_path):
    import dataclasses

    from keras_lottery.search.config import ConfigError

    with pytest.raises(ConfigError, match="--tuner='grid'"):
        sweep.run_sweep(_base(idx_dir), str(tmp_path / "s"), tuner="grid")
    with pytest.raises(ConfigError, match="--validation_examples=0 is invalid for a sweep"):
        sweep.run_sweep(dataclasses.replace(_base(idx_dir), validation_examples=0),
                        str(tmp_path / "v"))


@pytest.mark.slow
def test_the_pareto_front_is_every_undominated_point_of_every_trial(idx_dir, tmp_path):
    import dataclasses

    sweep_dir = tmp_path / "sweep"
    summary = sweep.run_sweep(dataclasses.replace(_base(idx_dir), rounds=2), str(sweep_dir),
                              max_trials=3, seed=2)
    on_disk = set()
    for trial in os.listdir(sweep_dir):
        path = sweep_dir / trial / "run" / "results.json"
        if trial.startswith("trial_") and path.exists():
            for record in json.loads(path.read_text())["rounds"]:
                if record.get("ticket_accuracy") is not None:
                    on_disk.add((trial, record["round"]))
    points = summary["points"]
    assert {(p["trial"], p["round"]) for p in points} == on_disk and len(on_disk) >= 4

    def dominated(p):
        key = "validation_accuracy"  # model selection never looks at the test set
        return any(q["remaining"] <= p["remaining"] and q[key] >= p[key]
                   and (q["remaining"], q[key]) != (p["remaining"], p[key]) for q in points)

    front = {(p["trial"], p["round"]) for p in summary["pareto_front"]}
    assert front == {(p["trial"], p["round"]) for p in points if not dominated(p)}


def test_a_resumed_sweep_keeps_its_base_settings(idx_dir, tmp_path):
    from keras_lottery.search.config import ConfigError

    sweep.run_sweep(_base(idx_dir), str(tmp_path / "sweep"), max_trials=1, seed=1)
    other = _base(idx_dir)
    other.epochs = 2
    with pytest.raises(ConfigError, match=r"--epochs=2 \(was 1\)"):
        sweep.run_sweep(other, str(tmp_path / "sweep"), max_trials=1, seed=1)


@pytest.mark.slow
def test_an_interrupted_sweep_resumes_its_running_trial(idx_dir, tmp_path):
    """Killed inside trial 0's second round, the sweep run again continues that trial from its
    checkpoints (it does not start it over) and then runs the rest."""
    import signal
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sweep_dir = tmp_path / "sweep"
    command = [sys.executable, "-m", "apps.sweep", "--flagfile=apps/flags/quickstart.cfg",
               f"--data_dir={idx_dir}", "--validation_examples=200", "--rounds=2", "--epochs=2",
               "--batch_size=100", "--ticket_epoch=0", "--ticket_epochs=1", "--nodense_baseline",
               "--verbose=0", "--max_trials=2", f"--sweep_dir={sweep_dir}",
               "--sweep=mask_init=0:0.05,mask_penalty"]  # s0 >= 0: no empty ticket on this set
    first = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    results = sweep_dir / "trial_0" / "run" / "results.json"
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if len(json.loads(results.read_text())["rounds"]) == 1:
                break
        except (OSError, ValueError):
            pass
        assert first.poll() is None, first.stderr.read()[-2000:]
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.communicate()
    again = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "resuming after round 1 of 2" in again.stdout
    assert again.stdout.count("trial 0 on") == 1  # trial 0 continued once, trial 1 ran once
    assert again.stdout.count("trial 1 on") == 1
    summary = json.loads((sweep_dir / "sweep.json").read_text())
    assert [t["status"] for t in summary["trials"]] == ["COMPLETED", "COMPLETED"]
    assert len(json.loads(results.read_text())["rounds"]) == 2


@pytest.mark.slow
def test_a_sweep_varies_only_the_knobs_it_names(idx_dir, tmp_path, monkeypatch):
    """`--sweep=mask_init=-0.02:0.02` (the paper's Conv-6 CS sweep of s0 at a fixed lambda)
    varies s0 in that range; lambda and beta_T keep the base flags' values."""
    from keras_lottery.search.config import ConfigError

    original, calls = search.run, []

    def record(config):
        calls.append(config)
        return original(config)

    monkeypatch.setattr(search, "run", record)
    base = _base(idx_dir)
    base.mask_penalty, base.final_temperature = 3e-7, 150.0
    sweep.run_sweep(base, str(tmp_path / "sweep"), max_trials=3, seed=2,
                    sweep="mask_init=-0.02:0.02")
    assert len({c.mask_init for c in calls}) == 3
    assert all(-0.02 <= c.mask_init <= 0.02 for c in calls)
    assert {(c.mask_penalty, c.final_temperature) for c in calls} == {(3e-7, 150.0)}
    with pytest.raises(ConfigError, match="holds a sweep with other settings: --sweep="):
        sweep.run_sweep(base, str(tmp_path / "sweep"), max_trials=3, seed=2,
                        sweep="mask_penalty")


@pytest.mark.parametrize("text, expected", [
    ("", [name for name, _, _ in methods.get("cs").sweep_space]),
    ("mask_penalty=1e-11:1e-7:log",
     [("mask_penalty", "float", dict(min_value=1e-11, max_value=1e-7, sampling="log"))]),
    ("final_temperature=100|200, mask_init",
     [("final_temperature", "choice", dict(values=[100.0, 200.0])),
      ("mask_init", "float", dict(min_value=-0.05, max_value=0.05))]),
])
def test_sweep_spaces(text, expected):
    space = sweep.parse_space("cs", text)
    assert (space if text else [name for name, _, _ in space]) == expected


@pytest.mark.parametrize("text, words", [
    ("prune_fraction", "--method=cs sweeps ['final_temperature', 'mask_init', 'mask_penalty', "
                       "'target_macs', 'target_parameters']"),
    ("mask_init=0.1:0", "LOW must be below HIGH"),
    ("mask_init=a:b", "'a' is not a number"),
    ("mask_init=0:1:exp", "expected mask_init=LOW:HIGH"),
    ("mask_init,mask_init", "a knob appears twice"),
])
def test_bad_sweep_spaces_are_refused_in_one_line(text, words):
    from keras_lottery.search.config import ConfigError

    with pytest.raises(ConfigError, match=None) as error:
        sweep.parse_space("cs", text)
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_sweep_over_budgets_lands_each_trial_on_its_budget(idx_dir, tmp_path):
    import dataclasses

    space = sweep.parse_space("imp", "target_macs=0.5|0.25")
    assert space == [("target_macs", "choice", dict(values=[0.5, 0.25]))]
    base = dataclasses.replace(_base(idx_dir), method="imp", mask_granularity="unit",
                               ticket_epochs=0)
    summary = sweep.run_sweep(base, str(tmp_path / "sweep"), max_trials=2, seed=0,
                              sweep="target_macs=0.5|0.25")
    landed = {}
    for trial in summary["trials"]:
        results = json.load(open(tmp_path / "sweep" / f"trial_{trial['trial']}"
                                 / "run" / "results.json"))
        budget = results["rounds"][-1]["budget"]
        landed[budget["target"]] = budget["achieved"]
    assert set(landed) == {0.5, 0.25}
    assert all(0.9 * target <= achieved <= target for target, achieved in landed.items())
