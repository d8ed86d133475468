"""Reliability: a run killed with SIGKILL and started again ends as an uninterrupted run."""

import json
import os
import signal
import subprocess
import sys

import pytest

from keras_lottery import search, tickets
from keras_lottery.config import ConfigError, SearchConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNNER = os.path.join(ROOT, "tests", "resume_run.py")


def _run_to_end(idx_dir, out):
    done = subprocess.run([sys.executable, RUNNER, idx_dir, str(out)], capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0 and "DONE" in done.stdout, done.stderr[-3000:]
    return done.stdout


def _kill_at(idx_dir, out, marker, occurrence):
    """Starts the run and SIGKILLs it right after the `occurrence`-th line starting with `marker`."""
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
    for record in results["rounds"]:
        record.pop("wall_time_s")
    results["flags"].pop("output_dir")
    masks = [tickets.load_masks(str(out / "tickets" / f"round_{r}.npz")) for r in (1, 2)]
    return results, masks


def test_killed_runs_resume_to_the_uninterrupted_result(idx_dir, tmp_path):
    reference = tmp_path / "reference"
    _run_to_end(idx_dir, reference)
    expected, expected_masks = _comparable(reference)
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
    for got, want in zip(masks, expected_masks):
        assert got.keys() == want.keys()
        assert all((got[k] == want[k]).all() for k in got)
    assert not os.path.exists(resumed / "state")


def _tiny(idx_dir, out, **overrides):
    settings = dict(data_dir=idx_dir, validation_examples=200, rounds=1, epochs=1, batch_size=64,
                    ticket_epoch=0, ticket_epochs=0, dense_baseline=False, output_dir=str(out),
                    verbose=0)
    settings.update(overrides)
    return SearchConfig(**settings)


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

    original = search.Search._round_callbacks

    def poisoned(self, round_index, *args):
        extra = [PoisonRoundTwo()] if round_index == 2 else []
        return original(self, round_index, *args) + extra

    monkeypatch.setattr(search.Search, "_round_callbacks", poisoned)
    out = tmp_path / "nan"
    with pytest.raises(TrainingDiverged, match=r"round 2 diverged at epoch 1, step \d+ \(loss nan\)"
                                               r".*--learning_rate"):
        search.run(_tiny(idx_dir, out, rounds=2))
    saved = json.loads((out / "results.json").read_text())
    assert [r["round"] for r in saved["rounds"]] == [1]
    assert (out / "tickets" / "round_1.npz").exists()
