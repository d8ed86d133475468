"""The search app end to end on a tiny data set made by the test."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_fixture_data

import keras_lottery
from keras_lottery import search, tickets
from keras_lottery.search import model_setup
from keras_lottery.search.config import ConfigError, SearchConfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tiny(idx_dir, out, **overrides):
    settings = dict(
        data_dir=idx_dir, validation_examples=200, rounds=2, epochs=2, batch_size=64,
        ticket_epoch=1, ticket_epochs=1, mask_init=-0.01, mask_penalty=1e-6,
        output_dir=str(out), verbose=0, deployment=False)  # export: test_granularity
    settings.update(overrides)
    return SearchConfig(**settings)


def test_search_writes_results_tickets_and_tensorboard(idx_dir, tmp_path):
    out = tmp_path / "run"
    results = search.run(_tiny(idx_dir, out))
    with open(out / "results.json") as handle:
        saved = json.load(handle)
    assert saved == results
    assert saved["flags"]["mask_penalty"] == 1e-6 and saved["flags"]["rounds"] == 2
    assert [r["round"] for r in saved["rounds"]] == [1, 2]
    for record, epochs in zip(saved["rounds"], (2, 4)):
        assert record["method"] == "cs" and record["epochs"] == epochs
        assert 0.0 <= record["remaining"] <= 1.0
        assert 0.0 <= record["search_accuracy"] <= 1.0
        assert 0.0 <= record["ticket_accuracy"] <= 1.0
        masks = tickets.load_masks(str(out / "tickets" / f"round_{record['round']}.npz"))
        assert tickets.remaining_fraction(masks) == pytest.approx(record["remaining"])
        assert set(record["remaining_per_layer"]) == {"fc1", "fc2", "output"}
    assert saved["dense"]["remaining"] == 1.0
    report = json.load(open(out / "ticket" / "report.json"))
    assert report["remaining"] == pytest.approx(saved["rounds"][-1]["remaining"])
    assert saved["rounds"][-1]["ticket_report"]["kept_weights"] == report["kept_weights"]
    assert os.path.exists(out / "ticket" / "ticket.keras")
    # Four runs, one event file each: no sub-runs, nothing at the root.
    assert sorted(os.listdir(out / "tensorboard")) == ["dense", "search", "summary", "tickets"]
    for run in ("dense", "search", "summary", "tickets"):
        assert len(os.listdir(out / "tensorboard" / run)) == 1, run


def test_tensorboard_has_mask_summaries(idx_dir, tmp_path):
    from tensorboard.backend.event_processing import event_accumulator

    out = tmp_path / "run"
    search.run(_tiny(idx_dir, out, rounds=1, ticket_epochs=0, dense_baseline=False))
    accumulator = event_accumulator.EventAccumulator(
        str(out / "tensorboard" / "search"), size_guidance={"tensors": 0})
    accumulator.Reload()
    tags = set(accumulator.Tags()["tensors"])
    for tag in ("mask/temperature", "mask/remaining", "mask/penalty", "mask/remaining/fc1",
                "mask/beta_s/fc1", "mask/settled/removed", "accuracy/train",
                "accuracy/validation"):
        assert tag in tags, (tag, tags)
    # The histogram holds beta * s inside [-10, 10]; the settled groups are counted.
    histogram = tf.make_ndarray(accumulator.Tensors("mask/beta_s/fc1")[-1].tensor_proto)
    assert histogram[:, 0].min() >= -10 and histogram[:, 1].max() <= 10
    settled = [float(tf.make_ndarray(e.tensor_proto))
               for e in accumulator.Tensors("mask/settled/removed")]
    assert settled[-1] + histogram[:, 2].sum() <= 784 * 300 + 300 * 100 + 100 * 10
    betas = [float(tf.make_ndarray(event.tensor_proto))
             for event in accumulator.Tensors("mask/temperature")]
    assert betas[-1] == pytest.approx(200.0)


@pytest.mark.parametrize("field, value, words", [
    ("method", "magic", "--method='magic'"),
    ("rounds", 0, "--rounds=0"),
    ("mask_penalty", -1.0, "--mask_penalty=-1.0"),
    ("mask_init", float("nan"), "--mask_init=nan"),
    ("final_temperature", 0.5, "--final_temperature=0.5"),
    ("rewind_epoch", 11, "--rewind_epoch=11"),
    ("model", "resnet1000", "--model='resnet1000'"),
    ("steps_per_execution", 0, "--steps_per_execution=0"),
])
def test_bad_settings_are_rejected_in_one_line(field, value, words):
    with pytest.raises(ConfigError) as error:
        SearchConfig(**{field: value}).validate()
    message = str(error.value)
    assert words in message and "\n" not in message


@pytest.mark.slow
def test_app_runs_from_flagfile_and_reports_bad_flags(idx_dir, tmp_path):
    out = tmp_path / "app"
    command = [sys.executable, "-m", "apps.search", "--flagfile=apps/flags/quickstart.cfg",
               f"--data_dir={idx_dir}", "--validation_examples=200", "--rounds=1",
               "--epochs=1", "--ticket_epoch=1", "--ticket_epochs=0", "--nodense_baseline",
               f"--output_dir={out}", "--verbose=0"]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "round 1/1 (cs): remaining" in done.stdout
    assert json.load(open(out / "results.json"))["rounds"][0]["round"] == 1
    bad = subprocess.run(command + ["--mask_penalty=-3"], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert bad.returncode != 0
    assert "--mask_penalty=-3.0 is invalid" in bad.stderr and "Traceback" not in bad.stderr


@pytest.fixture(scope="module")
def cs_record(tmp_path_factory):
    """Round 1's record of a one-round CS search: the keys every method's records share."""
    data = write_fixture_data(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("cs") / "run"
    return search.run(_tiny(data, out, rounds=1, epochs=1, dense_baseline=False))["rounds"][0]


@pytest.mark.parametrize("overrides", [
    {"method": "imp", "prune_scope": "global", "rewind_epoch": 0},
    {"method": "imp", "prune_fraction_output": 0.1, "rewind_epoch": 1},
    {"method": "iss", "mask_init": 1.0, "mask_penalty": 1e-8, "mask_optimizer": "sgd",
     "mask_learning_rate": 20.0, "rewind_epoch": 0},
    # s0 > 0: a supermask from s0 = -0.01 keeps no weight after one epoch here (an error).
    {"method": "cs", "supermask": True, "optimizer": "adam", "learning_rate": 3e-4,
     "weight_decay": 0.0, "mask_init": 0.05},
])
def test_every_method_writes_the_same_records(idx_dir, tmp_path, overrides, cs_record):
    results = search.run(_tiny(idx_dir, tmp_path / "run", rounds=2, epochs=1,
                               dense_baseline=False, **overrides))
    baseline = cs_record
    for record in results["rounds"]:
        exported = {"ticket_report", "deployment"}  # tickets retrained (not reused) only
        assert set(record) - exported == set(baseline) - exported
        assert record["method"] == overrides["method"]
        assert 0.0 <= record["ticket_accuracy"] <= 1.0
    if overrides["method"] == "imp":
        first, second = (r["remaining_per_layer"] for r in results["rounds"])
        if overrides.get("prune_scope") == "global":
            assert results["rounds"][0]["remaining"] == pytest.approx(0.8, abs=1e-5)
            assert results["rounds"][1]["remaining"] == pytest.approx(0.64, abs=1e-5)
        else:
            assert first["fc1"] == pytest.approx(0.8, abs=1e-5)
            assert first["output"] == pytest.approx(0.9, abs=1e-5)
            assert second["output"] == pytest.approx(0.81, abs=1e-3)


@pytest.mark.parametrize("field, value, words", [
    ("prune_fraction", 1.0, "--prune_fraction=1.0"),
    ("prune_scope", "local", "--prune_scope='local'"),
    ("mask_optimizer", "rmsprop", "--mask_optimizer='rmsprop'"),
    ("mask_learning_rate", -2.0, "--mask_learning_rate=-2.0"),
    ("supermask", True, "--supermask=True"),
])
def test_bad_method_settings_are_rejected(field, value, words):
    settings = {field: value}
    if field == "supermask":
        settings["method"] = "imp"
    with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace("[", r"\[")):
        SearchConfig(**settings).validate()


@pytest.mark.slow  # 46 s: a mixed-precision search end to end (the whole suite runs it)
def test_mixed_precision_search_keeps_masks_float32_and_restores_policy(idx_dir, tmp_path):
    import keras

    results = search.run(_tiny(idx_dir, tmp_path / "mp", rounds=2, epochs=1, ticket_epochs=1,
                               dense_baseline=False, mixed_precision="mixed_float16"))
    assert keras.mixed_precision.global_policy().name == "float32"
    assert all(np.isfinite(r["search_loss"]) for r in results["rounds"])
    assert results["rounds"][1]["remaining"] <= results["rounds"][0]["remaining"] + 1e-9


def test_piecewise_learning_rate_decay_restarts_every_round():
    from keras_lottery.search.model_setup import learning_rate_schedule

    config = SearchConfig(learning_rate=0.1, epochs=85, lr_decay_epochs=(56, 71),
                          lr_decay_factor=0.1)
    schedule = learning_rate_schedule(config, steps_per_epoch=10)
    values = [float(schedule(step)) for step in (0, 559, 561, 709, 711, 849)]
    np.testing.assert_allclose(values, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
    with pytest.raises(ConfigError, match="--lr_decay_epochs='71,56' is invalid"):
        SearchConfig(epochs=85, lr_decay_epochs=(71, 56)).validate()  # one line, names the value


def test_target_remaining_lands_each_round_on_its_target(idx_dir, tmp_path):
    results = search.run(_tiny(idx_dir, tmp_path / "t", rounds=2, epochs=2, ticket_epochs=0,
                               dense_baseline=False, target_remaining=0.3, mask_penalty=1e-6))
    # Round r of 2 keeps 0.3 ** (r / 2) of the weights, to the weight.
    landed = [r["remaining"] for r in results["rounds"]]
    assert landed == pytest.approx([0.3 ** 0.5, 0.3], abs=1e-4)
    for field, value, words in (("target_remaining", 1.2, "--target_remaining=1.2"),
                                ("method", "imp", "--target_remaining=0.3")):
        settings = {"target_remaining": 0.3, field: value}
        with pytest.raises(ConfigError, match=words):
            SearchConfig(**settings).validate()


@pytest.mark.slow
def test_steps_per_execution_gives_the_same_search(idx_dir, tmp_path):
    # 1000 training examples in batches of 100: 10 steps an epoch, 5 per call into the step.
    settings = dict(rounds=2, batch_size=100, dense_baseline=False, target_remaining=0.3,
                    target_start=0.3)
    one = search.run(_tiny(idx_dir, tmp_path / "one", **settings))
    five = search.run(_tiny(idx_dir, tmp_path / "five", steps_per_execution=5, **settings))
    for a, b in zip(one["rounds"], five["rounds"]):
        for key in ("remaining", "search_accuracy", "ticket_accuracy", "temperature"):
            if key in a:
                assert a[key] == pytest.approx(b[key], abs=1e-6), key
    for r in (1, 2):
        masks_one = tickets.load_masks(str(tmp_path / "one" / "tickets" / f"round_{r}.npz"))
        masks_five = tickets.load_masks(str(tmp_path / "five" / "tickets" / f"round_{r}.npz"))
        for name in masks_one:
            np.testing.assert_array_equal(masks_one[name], masks_five[name])
    # No call runs across an epoch's end: at most 3 of 10 steps is 2 per call.
    steps = [model_setup.execution_steps(10, k) for k in (1, 3, 5, 7, 10, 64)]
    assert steps == [1, 2, 5, 5, 10, 10]
    assert model_setup.execution_steps(430, 10) == 10 and model_setup.execution_steps(2, 10) == 2


@pytest.mark.slow
def test_seeds_run_one_search_per_seed_and_print_mean_and_spread(idx_dir, tmp_path):
    """`--seeds=0,1` runs two searches that differ only in the seed, each in its own
    directory, equal to a run with `--seed=k`, then prints the setting's mean and spread."""
    out = tmp_path / "replicates"
    flags = ["--data_dir=" + idx_dir, "--validation_examples=200", "--rounds=1", "--epochs=1",
             "--batch_size=64", "--ticket_epoch=1", "--ticket_epochs=1", "--nodense_baseline",
             "--verbose=0", "--train_examples=1000", "--nodeployment"]
    done = subprocess.run([sys.executable, "-m", "apps.search", *flags, "--seeds=0,1",
                           f"--output_dir={out}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "warning:" not in done.stderr  # the seeds get no other method's settings
    first, second = (json.load(open(out / f"seed_{k}" / "results.json")) for k in (0, 1))
    assert (first["flags"]["seed"], second["flags"]["seed"]) == (0, 1)
    assert first["rounds"][0]["remaining"] != second["rounds"][0]["remaining"]
    reference = search.run(SearchConfig.from_dict({**first["flags"],
                                                   "output_dir": str(tmp_path / "one")}))
    assert reference["rounds"][0]["remaining"] == first["rounds"][0]["remaining"]
    remaining = [100 * r["rounds"][0]["remaining"] for r in (first, second)]
    line = next(line for line in done.stdout.splitlines() if line.startswith("| replicates |"))
    assert f"| 2 | 1 | {np.mean(remaining):.2f} ± {np.std(remaining, ddof=1):.2f} |" in line
    bad = subprocess.run([sys.executable, "-m", "apps.search", "--seeds=0,x"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--seeds=0,x is invalid" in bad.stderr


@pytest.mark.slow
def test_imp_reuses_round_r_plus_1_as_ticket_r_retraining(idx_dir, tmp_path):
    """IMP rewinding to w_k: round r+1 trains ticket r from w_k for `epochs` epochs, so with
    --reuse_next_round ticket r's accuracy is round r+1's and only the last ticket is
    retrained; the tickets (masks) are those of separate retraining, at fewer epochs."""
    settings = dict(method="imp", prune_scope="global", rounds=3, epochs=2, rewind_epoch=1,
                    ticket_epoch=1, ticket_epochs=2, dense_baseline=False, train_examples=1000)
    reused = search.run(_tiny(idx_dir, tmp_path / "reused", **settings))
    separate = search.run(_tiny(idx_dir, tmp_path / "separate", reuse_next_round=False,
                                **settings))
    for r in (1, 2, 3):
        a, b = (tickets.load_masks(str(tmp_path / run / "tickets" / f"round_{r}.npz"))
                for run in ("reused", "separate"))
        assert all(np.array_equal(a[name], b[name]) for name in a)
    rounds = reused["rounds"]
    assert [r["ticket_accuracy"] for r in rounds[:2]] == [r["search_accuracy"]
                                                          for r in rounds[1:]]
    assert [r["ticket_source"] for r in rounds] == ["round_2", "round_3", "retrained"]
    assert [r["ticket_epochs_trained"] for r in rounds] == [0, 0, 2]
    assert [r["ticket_epochs_trained"] for r in separate["rounds"]] == [2, 2, 2]
    trained = {run: [step for step, _ in _scalars(tmp_path / run / "tensorboard" / "tickets")[
        "accuracy/train"]] for run in ("reused", "separate")}
    assert trained == {"reused": [5, 6], "separate": [1, 2, 3, 4, 5, 6]}  # only ticket 3 trained
    # Settings under which round r+1 is not ticket r's retraining retrain every ticket.
    other = search.run(_tiny(idx_dir, tmp_path / "other", **{**settings, "ticket_epochs": 1}))
    assert [r["ticket_source"] for r in other["rounds"]] == ["retrained"] * 3


@pytest.mark.slow
def test_load_run_rebuilds_every_rounds_ticket_which_retrains_to_the_recorded_accuracy(
        idx_dir, tmp_path):
    """`keras_lottery.load_run(run_dir, round=r)` gives round r's masks and start weights `w_k`; the
    ticket retrained later as the run did (same optimizer, data order and epochs) reaches the
    recorded ticket accuracy exactly; every round's ticket is exported."""
    from keras_lottery import data
    from keras_lottery.search import model_setup as training
    from keras_lottery.tickets import snapshots as weights_lib

    out = tmp_path / "run"
    results = search.run(_tiny(idx_dir, out, train_examples=1000, dense_baseline=False))
    config = SearchConfig.from_dict(results["flags"])
    splits = data.load(config.dataset, idx_dir, validation_examples=200, train_examples=1000,
                       seed=config.seed)
    _, test = data.evaluation_pipelines(splits, config.batch_size)
    steps = data.steps_per_epoch(splits, config.batch_size)
    snapshot = weights_lib.load_snapshot(
        str(out / "state" / f"snapshot_epoch_{config.ticket_epoch}.npz"))
    for record in results["rounds"]:
        r = record["round"]
        ticket = keras_lottery.load_run(str(out), round=r)
        saved = tickets.load_masks(str(out / "tickets" / f"round_{r}.npz"))
        assert all(np.array_equal(ticket.masks[k], saved[k]) for k in saved)
        assert tickets.extract_masks(ticket.model).keys() == saved.keys()
        for index, (_, value) in snapshot.items():
            np.testing.assert_array_equal(ticket.model.weights[index].numpy(), value)
        assert ticket.record == record
        training.compile_model(ticket.model, config, steps)
        ticket.model.fit(data.epoch_stream(splits, config.batch_size, seed=config.seed,
                                           stream=2 * r + 1), epochs=config.ticket_epochs,
                         steps_per_epoch=steps, verbose=0, shuffle=False)
        accuracy = ticket.model.evaluate(test, verbose=0, return_dict=True)["accuracy"]
        assert accuracy == pytest.approx(record["ticket_accuracy"], abs=1e-6)
        report = json.load(open(out / "ticket" / f"round_{r}" / "report.json"))
        assert report["remaining"] == pytest.approx(record["remaining"])
    assert keras_lottery.load_run(str(out)).record["round"] == 2
    with pytest.raises(FileNotFoundError,
                       match=r"has no round 7; its finished rounds are \[1, 2\]"):
        keras_lottery.load_run(str(out), round=7)


def _saved_model(path, input_shape=(28, 28, 1), activation=None):
    import keras

    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation=activation)])
    model.save(path)
    return model


def test_init_from_starts_at_the_saved_models_outputs(idx_dir, tmp_path):
    """`--init_from=model.keras`: its Dense layers get masks scaled by 1/sigmoid(s0), so at
    step 0 the masked network (training and inference) computes the saved model's outputs;
    the saved weights are w_0 of the search."""
    from keras_lottery.search import model_setup as training
    from keras_lottery.tickets import snapshots as weights_lib

    original = _saved_model(str(tmp_path / "trained.keras"))
    config = _tiny(idx_dir, tmp_path / "run", init_from=str(tmp_path / "trained.keras"),
                   mask_init=-0.05, rounds=1, dense_baseline=False, train_examples=1000)
    assert config.mask_scaling  # implied for CS
    model = training.build_model(config, (28, 28, 1), 10)
    x = np.random.default_rng(0).normal(size=(8, 28, 28, 1)).astype("float32")
    for training_mode in (False, True):
        np.testing.assert_allclose(model(x, training=training_mode), original(x),
                                   rtol=1e-5, atol=1e-5)
    results = search.run(config)
    assert results["flags"]["init_from"] == config.init_from and results["flags"]["mask_scaling"]
    w_0 = weights_lib.load_snapshot(str(tmp_path / "run" / "state" / "initial_weights.npz"))
    kernels = [value for _, value in w_0.values() if value.shape == (784, 32)]
    np.testing.assert_array_equal(kernels[0], original.layers[1].kernel.numpy())
    assert 0 < results["rounds"][0]["remaining"] < 1


@pytest.mark.parametrize("make, words", [
    (lambda p: None, "no such file"),
    (lambda p: _saved_model(p, input_shape=(32, 32, 3)),
     "takes inputs [(32, 32, 3)], but --dataset=fashion_mnist gives images of shape (28, 28, 1)"),
    (lambda p: _saved_model(p, activation="softmax"), "ends in a softmax"),
    (lambda p: open(p, "w").write("not a model"), "cannot be loaded as a Keras model"),
])
def test_bad_init_from_is_refused_in_one_line(idx_dir, tmp_path, make, words):
    path = str(tmp_path / "given.keras")
    make(path)
    with pytest.raises(ConfigError) as error:
        search.run(_tiny(idx_dir, tmp_path / "run", init_from=path).validate())
    assert words in str(error.value) and "\n" not in str(error.value)


def _scalars(directory):
    """`{tag: [(step, value)]}` of every event file under `directory` (this run only)."""
    from tensorboard.backend.event_processing import event_accumulator

    accumulator = event_accumulator.EventAccumulator(str(directory),
                                                     size_guidance={"tensors": 0})
    accumulator.Reload()
    values = {tag: [(e.step, tf.make_ndarray(e.tensor_proto)) for e in accumulator.Tensors(tag)]
              for tag in accumulator.Tags()["tensors"]}
    return {tag: [(step, float(value)) for step, value in events]
            for tag, events in values.items()
            if events and events[0][1].dtype.kind == "f" and events[0][1].ndim == 0}


def test_tensorboard_one_timeline_a_summary_run_and_hparams(idx_dir, tmp_path):
    """Rounds sit on one timeline of cumulative epochs in the `search` run, tickets on theirs
    in `tickets`; the `summary` run has one point per round (the dense accuracy at each, a
    reference line), the HParams with their metrics, the flags and the layout."""
    from tensorboard.backend.event_processing import event_accumulator

    out = tmp_path / "run"
    results = search.run(_tiny(idx_dir, out, rounds=3, epochs=2, train_examples=1000))
    board = out / "tensorboard"
    searched = _scalars(board / "search")
    assert [step for step, _ in searched["loss/train"]] == [1, 2, 3, 4, 5, 6]
    assert len(searched["accuracy/validation"]) == 6
    remaining = searched["mask/remaining"]
    assert remaining[-1][0] >= 3 * 2 * 13  # global steps (13 steps per epoch here)
    ticket = _scalars(board / "tickets")
    assert [step for step, _ in ticket["accuracy/train"]] == [1, 2, 3]  # 1 epoch a ticket
    assert ticket["test/accuracy"] == [(r, pytest.approx(results["rounds"][r - 1]["ticket_accuracy"]))
                                       for r in (1, 2, 3)]
    summary = _scalars(board / "summary")
    for key in ("remaining", "search_accuracy", "ticket_accuracy"):
        assert [step for step, _ in summary[f"Results/{key}"]] == [1, 2, 3]
        assert [v for _, v in summary[f"Results/{key}"]] == pytest.approx(
            [record[key] for record in results["rounds"]])
    assert summary["Results/search_epochs"] == [(1, 2.0), (2, 4.0), (3, 6.0)]
    assert summary["Results/dense_accuracy"] == [
        (r, pytest.approx(results["dense"]["test_accuracy"])) for r in (1, 2, 3)]
    run = event_accumulator.EventAccumulator(str(board / "summary"))
    run.Reload()
    plugins = run.PluginTagToContent("hparams")
    assert {"_hparams_/experiment", "_hparams_/session_start_info"} <= set(plugins)
    assert "flags" in run.PluginTagToContent("text")
    assert run.PluginTagToContent("custom_scalars")
