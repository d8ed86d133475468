"""The benchmarks' bookkeeping (never their timings: those are not tests)."""

import json

import pytest

from benchmarks import search_cost


def _run(directory, method, rounds, dense=None, ticket_epoch=2, ticket_epochs=10):
    directory.mkdir()
    results = {"flags": {"method": method, "ticket_epoch": ticket_epoch,
                         "ticket_epochs": ticket_epochs},
               "dense": dense,
               "rounds": [{"round": i + 1, "remaining": remaining, "ticket_accuracy": accuracy,
                           "epochs": 10 * (i + 1)} for i, (remaining, accuracy) in enumerate(rounds)]}
    (directory / "results.json").write_text(json.dumps(results))
    return str(directory)


def test_search_cost_finds_the_first_sparse_and_accurate_ticket(tmp_path):
    imp = _run(tmp_path / "imp", "imp", [(0.8, 0.88), (0.09, 0.86), (0.07, 0.879)],
               dense={"test_accuracy": 0.88})
    cs = _run(tmp_path / "cs", "cs", [(0.12, 0.89), (0.06, 0.876)])
    rows = search_cost.cost_table([imp, cs], max_remaining=0.10, tolerance=0.005)
    # IMP's round 2 is sparse enough but 2 points short; round 3 is the first that counts.
    assert [(row["method"], row["round"], row["search_epochs"]) for row in rows] == [
        ("imp", 3, 30), ("cs", 2, 20)]
    assert rows[0]["ticket_epochs"] == 12
    never = _run(tmp_path / "never", "cs", [(0.5, 0.9)])
    assert "round" not in search_cost.cost_table([never], dense=0.88)[0]
    with pytest.raises(SystemExit, match="dense baseline"):
        search_cost.cost_table([never])


def test_scratch_control_retrains_a_shrunk_architecture_from_fresh_weights(tmp_path):
    import keras
    import numpy as np

    from benchmarks import scratch_control

    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    outputs = keras.layers.Dense(2, name="output")(keras.layers.Flatten()(x))
    trained = keras.Model(inputs, outputs)
    trained.get_layer("conv").kernel.assign(np.full((3, 3, 1, 3), 0.5, "float32"))
    path = str(tmp_path / "shrunk.keras")
    trained.save(path)
    fresh = scratch_control.fresh_copy(path)
    assert [w.shape for w in fresh.weights] == [w.shape for w in trained.weights]
    assert not np.allclose(fresh.get_layer("conv").kernel.numpy(), 0.5)
    with pytest.raises(SystemExit, match="error: --architecture='missing.keras': no such file"):
        scratch_control.main(["scratch_control", "--architecture=missing.keras"])


def test_scratch_control_trains_the_flagfiles_own_model_plain_at_the_width_it_names():
    import types

    from benchmarks import scratch_control
    from keras_lottery.layers import masked_layers

    splits = types.SimpleNamespace(input_shape=(32, 32, 3), num_classes=10, vocabulary_size=None)

    def built(alpha):
        config = types.SimpleNamespace(model="mobilenet_v2", width_multiplier=alpha)
        return scratch_control.flag_model(config, splits)

    thin, full = built(0.141), built(0.35)
    assert not masked_layers(thin) and not masked_layers(full)
    assert "mask_logits" not in " ".join(w.path for w in thin.weights)
    assert thin.count_params() < 0.7 * full.count_params()


def test_scratch_control_trains_on_the_images_the_search_sees(idx_dir):
    import keras

    from benchmarks import scratch_control
    from keras_lottery.apps import search as search_app

    search_app.FLAGS(["scratch_control", f"--data_dir={idx_dir}", "--image_size=32",
                      "--validation_examples=200", "--ticket_epoch=0", "--ticket_epochs=1"])
    config = search_app.config_from_flags()
    seen = []

    def build(splits):  # a model of 32x32x3 inputs: padded, gray made RGB, as the search's
        seen.append(tuple(splits.input_shape))
        inputs = keras.Input(splits.input_shape)
        x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
        return keras.Model(inputs, keras.layers.Dense(splits.num_classes)(x))

    accuracy, in_bits = scratch_control.train(config, build, seed=0)
    assert seen == [(32, 32, 3)] and 0.0 <= accuracy <= 1.0 and in_bits is None


def test_deployment_benchmark_times_saved_shrunk_tickets_against_dense(tmp_path):
    from benchmarks import deployment
    from keras_lottery import tickets

    path = str(tmp_path / "shrunk.keras")
    tickets.shrink(deployment.random_ticket("lenet300_100", "unit", 0.1)).save(path)
    table = deployment.main(["--models=lenet300_100", f"--shrunk={path}", "--batch_sizes=1",
                             "--threads=1", "--repeats=1"])
    rows = table["lenet300_100"]
    assert set(rows) == {f"keras {path}", f"tflite x1 {path}"}
    assert all(row[1] > 0 for row in rows.values())
    with pytest.raises(SystemExit, match="--shrunk needs one model"):
        deployment.main(["--models=lenet300_100,conv4", f"--shrunk={path}"])
    with pytest.raises(SystemExit, match="no such file 'gone.keras'"):
        deployment.main(["--models=conv4", "--shrunk=gone.keras"])


@pytest.mark.slow
def test_budget_vs_width_builds_a_budget_ticket_and_the_width_network_of_equal_macs():
    from benchmarks import budget_vs_width

    alpha = budget_vs_width.equal_mac_alpha(0.5, 0.35, 32)
    width = budget_vs_width.macs(budget_vs_width.mobilenet(alpha, 32))
    dense = budget_vs_width.macs(budget_vs_width.mobilenet(0.35, 32))
    assert 0.45 < width / dense <= 0.5 * 1.05
    ticket = budget_vs_width.random_budget_ticket(0.35, 32, 0.5)
    assert 0.45 <= budget_vs_width.macs(ticket) / dense <= 0.5


def test_tradeoff_figure_draws_a_panel_per_runtime_and_names_a_bad_table(tmp_path):
    from benchmarks import tradeoff_figure

    table = tmp_path / "t.csv"
    table.write_text("label,method,quality,quality_spread,keras_batch_64,keras_batch_64_spread,"
                     "tflite_batch_1,tflite_batch_1_spread\n"
                     "dense,dense,2.78,0.04,1,,1,\n25%,unit CS,2.95,0.09,2.32,0.05,,\n")
    rows, runtimes = tradeoff_figure.read_rows(str(table))
    assert runtimes == ["keras_batch_64", "tflite_batch_1"] and len(rows) == 2
    figure = tradeoff_figure.draw(rows, runtimes, "bits/char", dense=2.78, tolerance=0.05)
    assert len(figure.axes) == 2
    assert len(figure.axes[1].lines) < len(figure.axes[0].lines)  # the CS row is not timed there
    out = tmp_path / "f.png"
    assert tradeoff_figure.main([f"--csv={table}", f"--out={out}"]) == 0 and out.stat().st_size
    (tmp_path / "bad.csv").write_text("label,quality\nx,1\n")
    with pytest.raises(SystemExit, match=r"lacks the columns \['method', 'quality_spread'\]"):
        tradeoff_figure.read_rows(str(tmp_path / "bad.csv"))
