"""The run directory cannot lose work: checkpoints, lock, extending, overwrite, divergence."""

import json
import os
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

from keras_lottery import search
from keras_lottery.callbacks import TrainingDiverged
from keras_lottery.data import DataError
from keras_lottery.layers import masked_layers
from keras_lottery.search import checkpoints
from keras_lottery.search.config import ConfigError, SearchConfig
from keras_lottery.search.run_directory import RunExistsError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(idx_dir, out, **overrides):
    from conftest import tiny_config

    return tiny_config(idx_dir, out, **{"epochs": 2, "ticket_epoch": 1, "ticket_epochs": 1,
                                        **overrides})


def _records(results):
    keep = ("round", "remaining", "search_accuracy", "search_loss", "ticket_accuracy",
            "remaining_per_layer")
    return [{k: r[k] for k in keep} for r in results["rounds"]]


def _model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_checkpoints_switch_only_to_complete_files(tmp_path):
    model = _model()
    directory = str(tmp_path / "phase")
    for epoch in (1, 2):
        model.layers[0].kernel.assign(np.full((3, 2), epoch, "float32"))
        checkpoints.save(model, directory, epoch, {"loss": 1.0 / epoch, "note": "text"})
    assert sorted(os.listdir(directory)) == ["epoch_1.logs.json", "epoch_2.logs.json",
                                             "epoch_2.weights.h5", "latest.json"]
    # Every epoch's numeric logs stay: the phase's history.
    assert checkpoints.history(directory) == [{"epoch": 1, "loss": 1.0},
                                              {"epoch": 2, "loss": 0.5}]
    # Killed after epoch 3's file was written but before the switch: epoch 2 is restored.
    model.layers[0].kernel.assign(np.full((3, 2), 3.0, "float32"))
    model.save_weights(os.path.join(directory, "epoch_3.weights.h5"))
    # A temporary file cut short by a kill is not a checkpoint.
    with open(os.path.join(directory, ".tmp-x.weights.h5"), "wb") as handle:
        handle.write(b"PK\x03")
    fresh = _model()
    assert checkpoints.restore(fresh, directory) == 2
    assert float(fresh.layers[0].kernel.numpy()[0, 0]) == 2.0
    # The switched-to file unreadable (a machine crash): the previous complete one is used.
    checkpoints.save(model, directory, 4)
    model.layers[0].kernel.assign(np.full((3, 2), 5.0, "float32"))
    checkpoints.save(model, directory, 5)
    with open(os.path.join(directory, "epoch_5.weights.h5"), "r+b") as handle:
        handle.truncate(100)
    model.save_weights(os.path.join(directory, "epoch_4.weights.h5"))  # an older complete file
    assert checkpoints.restore(_model(), directory) == 4
    assert checkpoints.restore(_model(), str(tmp_path / "none")) == 0


def test_extending_a_finished_run_adds_rounds(idx_dir, tmp_path):
    once = search.run(_tiny(idx_dir, tmp_path / "extended", rounds=1))
    extended = search.run(_tiny(idx_dir, tmp_path / "extended", rounds=2))
    direct = search.run(_tiny(idx_dir, tmp_path / "direct", rounds=2))
    assert _records(extended)[:1] == _records(once)
    assert _records(extended) == _records(direct)


@pytest.mark.slow
def test_a_second_process_on_the_same_directory_is_refused(idx_dir, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "apps.search", f"--data_dir={idx_dir}",
               "--validation_examples=200", "--batch_size=32", "--ticket_epochs=0",
               "--nodense_baseline", "--verbose=0", f"--output_dir={out}"]
    # long enough that it still holds the lock however slowly the second one starts (a loaded
    # machine); it is killed at the end
    long_run = ["--rounds=3", "--epochs=400"]
    first = subprocess.Popen(command + long_run, cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not (out / "results.json").exists():  # written once it holds the lock
            assert first.poll() is None and time.time() < deadline, first.stderr.read()
            time.sleep(0.1)
        second = subprocess.run(command + long_run, cwd=ROOT, text=True,
                                capture_output=True, timeout=300)
        assert second.returncode == 2
        errors = [l for l in second.stderr.splitlines() if l.startswith("error:")]
        assert len(errors) == 1 and f"is in use by process {first.pid}" in errors[0], errors
        assert "Traceback" not in second.stderr
    finally:
        first.kill()
        first.communicate()


def test_overwrite_keeps_the_old_run_until_the_new_one_loads(idx_dir, tmp_path):
    out = tmp_path / "run"
    search.run(_tiny(idx_dir, out, ticket_epochs=0))
    before = (out / "results.json").read_text()
    with pytest.raises(DataError):
        search.run(_tiny("/nonexistent/data", out, ticket_epochs=0, overwrite=True))
    assert (out / "results.json").read_text() == before
    assert (out / "tickets" / "round_1.npz").exists()
    replaced = search.run(_tiny(idx_dir, out, ticket_epochs=0, overwrite=True, mask_penalty=1e-5))
    assert replaced["flags"]["mask_penalty"] == 1e-5
    assert not [e for e in os.listdir(out) if e.startswith(".replaced")]


def test_run_files_without_results_are_not_deleted(idx_dir, tmp_path):
    out = tmp_path / "run"
    (out / "tickets").mkdir(parents=True)
    (out / "tickets" / "mine.txt").write_text("not a keras_lottery file")
    with pytest.raises(RunExistsError, match="holds tickets but no results.json"):
        search.run(_tiny(idx_dir, out))
    assert (out / "tickets" / "mine.txt").exists()


class _NanInEpoch(keras.callbacks.Callback):
    """Poisons `w` at the start of epoch `epoch` (0-based)."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.epoch:
            layer = masked_layers(self.model)[0]
            layer.unmasked_kernel.assign(np.full(layer.unmasked_kernel.shape, np.nan, "float32"))


def test_rerun_after_divergence_resumes_before_the_nan(idx_dir, tmp_path):
    out = tmp_path / "run"
    reference = search.run(_tiny(idx_dir, tmp_path / "reference", epochs=3))

    def poison(phase):
        return [_NanInEpoch(2)] if phase == "round_1" else []

    with pytest.raises(TrainingDiverged, match="round 1 diverged at epoch 3"):
        search.run(_tiny(idx_dir, out, epochs=3), callbacks=poison)
    # The NaN epoch was not saved: the phase resumes after epoch 2, with finite weights.
    latest = json.loads((out / "state" / "phases" / "round_1" / "latest.json").read_text())
    assert latest["epoch"] == 2
    again = search.run(_tiny(idx_dir, out, epochs=3))
    assert _records(again) == _records(reference)


def test_a_ticket_without_weights_is_an_error_not_a_record(idx_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged, match="round 1's ticket keeps no weight"):
        search.run(_tiny(idx_dir, out, mask_init=-5.0, mask_penalty=1e-3))
    assert json.loads((out / "results.json").read_text())["rounds"] == []


@pytest.mark.parametrize("settings, words", [
    ({"mask_init": -50.0}, "s0 must lie in [-10, 10]"),
    ({"mask_init": 3.0, "initial_temperature": 5.0}, "s0 must lie in [-2, 2]"),
    ({"method": "iss", "mask_init": 20.0}, "s0 must lie in [-10, 10]"),
])
def test_saturated_s0_is_refused(settings, words):
    with pytest.raises(ConfigError, match=r"--mask_init=.* is invalid: the mask would start "
                                          r"saturated"):
        SearchConfig(**settings).validate()
    with pytest.raises(ConfigError) as error:
        SearchConfig(**settings).validate()
    assert words in str(error.value)


def test_results_say_what_made_them(idx_dir, tmp_path):
    import tensorflow as tf

    import keras_lottery

    results = search.run(_tiny(idx_dir, tmp_path / "run", ticket_epochs=0))
    made_by = results["environment"]
    assert made_by["schema_version"] == 2 and made_by["keras_lottery"] == keras_lottery.__version__
    assert made_by["tensorflow"] == tf.__version__ and made_by["keras"] == keras.__version__
    assert made_by["host"] and made_by["started"].endswith("+00:00")
    assert set(made_by) >= {"python", "commit"}
