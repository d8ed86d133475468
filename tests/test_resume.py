"""Reliability: a run killed with SIGKILL and started again ends as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import pytest

from keras_lottery import search, tickets
from keras_lottery.search.config import ConfigError

#: Multi-process runs, kills and resumes: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "resume_run.py")


def _run_to_end(idx_dir, out):
    done = subprocess.run([sys.executable, RUNNER, idx_dir, str(out)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr[-3000:]
    return done.stdout


def _kill_at(idx_dir, out, marker, occurrence):
    """Starts the run and SIGKILLs it right after the `occurrence`-th line that starts with
    `marker`."""
    process = subprocess.Popen([sys.executable, RUNNER, idx_dir, str(out)],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = 0
    for line in process.stdout:
        if line.startswith(marker):
            seen += 1
            if seen == occurrence:
                process.send_signal(signal.SIGKILL)
                break
    process.wait(timeout=600)
    assert seen == occurrence, f"the run ended before {marker} #{occurrence}"


def _comparable(out):
    with open(out / "results.json") as handle:
        results = json.load(handle)
    for record in results["rounds"] + [results["dense"]]:
        for key in [k for k in record if k.endswith("wall_time_s")]:
            record.pop(key)
    results["flags"].pop("output_dir")
    results.pop("environment")  # the time and the commit of the run
    masks = [tickets.load_masks(str(out / "tickets" / f"round_{r}.npz")) for r in (1, 2)]
    return results, masks


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The data and the results of the uninterrupted run the killed runs must reproduce."""
    from conftest import write_fixture_data

    idx_dir = write_fixture_data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("reference") / "run"
    _run_to_end(idx_dir, out)
    return idx_dir, _comparable(out)


def _assert_same(out, expected):
    (want, want_masks), (got, got_masks) = expected, _comparable(out)
    assert got == want
    for one, two in zip(got_masks, want_masks):
        assert one.keys() == two.keys()
        assert all((one[k] == two[k]).all() for k in one)


@pytest.mark.parametrize("mode, count", [("weights", 2), ("switch", 2), ("weights", 7),
                                         ("switch", 9)])
def test_kill_inside_a_checkpoint_write_resumes_to_the_same_result(reference, tmp_path, mode,
                                                                   count):
    """Killed halfway through writing a checkpoint's file, or between the file and the switch
    to it (in round 1, and in the ticket retraining / round 2): the next run resumes from the
    last complete checkpoint."""
    idx_dir, expected = reference
    out = tmp_path / "run"
    killed = subprocess.run([sys.executable, RUNNER, idx_dir, str(out)], capture_output=True,
                            text=True, timeout=600,
                            env=dict(os.environ, KILL_IN_CHECKPOINT=f"{mode}:{count}"))
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    _run_to_end(idx_dir, out)
    _assert_same(out, expected)


def test_killed_runs_resume_to_the_uninterrupted_result(reference, tmp_path):
    idx_dir, (expected, expected_masks) = reference
    # The run has 13 epochs: round 1 (3), the dense baseline (3), the round-1 ticket (2),
    # round 2 (3) and its ticket (2). Each kill counts markers within its own process, which
    # resumes where the previous one stopped: mid-epoch in round 1; right after round 1's last
    # epoch (before its round-end step); inside the dense baseline; at the start of ticket
    # retraining; early in round 2; mid-epoch in round 2's last epoch.
    kills = [("MID_EPOCH", 2), ("EPOCH_END", 2), ("EPOCH_END", 2), ("EPOCH_END", 2),
             ("EPOCH_END", 3), ("MID_EPOCH", 1)]
    resumed = tmp_path / "resumed"
    for marker, occurrence in kills:
        _kill_at(idx_dir, resumed, marker, occurrence)
    output = _run_to_end(idx_dir, resumed)
    assert "resuming after round" in output
    results, masks = _comparable(resumed)
    assert results == expected
    # Each phase's per-epoch history survives the kills whole, one entry per epoch.
    assert [entry["epoch"] for entry in results["rounds"][1]["history"]] == [1, 2, 3]
    assert [entry["epoch"] for entry in results["dense"]["history"]] == [1, 2, 3]
    assert [entry["epoch"] for entry in results["rounds"][0]["ticket_history"]] == [1, 2]
    assert {"accuracy", "val_accuracy", "remaining"} <= set(results["rounds"][0]["history"][0])
    for got, want in zip(masks, expected_masks):
        assert got.keys() == want.keys()
        assert all((got[k] == want[k]).all() for k in got)
    # Finished: no epoch checkpoints are left; w_0, the start weights and the last model stay.
    assert sorted(os.listdir(resumed / "state")) == [
        "after_round_2.weights.h5", "initial_weights.npz", "snapshot_epoch_1.npz"]


def _tiny(idx_dir, out, **overrides):
    from conftest import tiny_config

    return tiny_config(idx_dir, out, **overrides)


def test_seeded_runs_are_bit_for_bit_repeatable(idx_dir, tmp_path):
    first = search.run(_tiny(idx_dir, tmp_path / "a", rounds=2, ticket_epochs=1, augment=True))
    second = search.run(_tiny(idx_dir, tmp_path / "b", rounds=2, ticket_epochs=1, augment=True))
    for one, two in zip(first["rounds"], second["rounds"]):
        for key in ("remaining", "search_accuracy", "search_loss", "ticket_accuracy"):
            assert one[key] == two[key], key
    other = search.run(_tiny(idx_dir, tmp_path / "c", rounds=2, ticket_epochs=1, augment=True,
                             seed=9))
    assert other["rounds"][0]["search_loss"] != first["rounds"][0]["search_loss"]


def test_other_settings_in_the_same_directory_are_refused(idx_dir, tmp_path):
    out = tmp_path / "run"
    search.run(_tiny(idx_dir, out))
    before = (out / "results.json").read_text()
    with pytest.raises(ConfigError, match=r"--mask_penalty=0.001 \(was 1e-06\).*--overwrite"):
        search.run(_tiny(idx_dir, out, mask_penalty=1e-3))
    assert (out / "results.json").read_text() == before
    again = search.run(_tiny(idx_dir, out, verbose=1))  # finished: nothing to redo
    assert json.loads(before)["rounds"] == again["rounds"]
    replaced = search.run(_tiny(idx_dir, out, mask_penalty=1e-3, overwrite=True))
    assert replaced["flags"]["mask_penalty"] == 1e-3


def test_divergence_stops_with_a_message_and_keeps_finished_rounds(idx_dir, tmp_path,
                                                                   monkeypatch):
    import keras
    import numpy as np

    from keras_lottery.callbacks import TrainingDiverged
    from keras_lottery.layers import masked_layers

    class PoisonRoundTwo(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            layer = masked_layers(self.model)[0]
            layer.unmasked_kernel.assign(np.full(layer.unmasked_kernel.shape, np.nan, "float32"))

    def poisoned(phase):
        return [PoisonRoundTwo()] if phase == "round_2" else []

    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"round 2 diverged at epoch 1, step \d+ \(loss nan\)"
                                               r".*--learning_rate"):
        search.run(_tiny(idx_dir, out, rounds=2), callbacks=poisoned)
    saved = json.loads((out / "results.json").read_text())
    assert [r["round"] for r in saved["rounds"]] == [1]
    assert (out / "tickets" / "round_1.npz").exists()
