"""Figures and the table from given results.json files."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_lottery import report
from keras_lottery.report import figures, replicates
from keras_lottery.report.tables import markdown_table

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_run(directory, method, rounds, supermask=False, dense=None, seed=0, **flags):
    directory.mkdir(parents=True)
    results = {
        "flags": {"method": method, "supermask": supermask, "seed": seed,
                  "output_dir": str(directory), **flags},
        "dense": dense,
        "rounds": [{"round": i + 1, "method": method, "remaining": remaining,
                    "ticket_accuracy": accuracy, "search_accuracy": accuracy - 0.01,
                    "epochs": 10 * (i + 1), "supermask": supermask,
                    "remaining_per_layer": {"fc1": remaining / 2, "output": remaining}}
                   for i, (remaining, accuracy) in enumerate(rounds)],
    }
    (directory / "results.json").write_text(json.dumps(results))
    return str(directory)


@pytest.fixture
def runs(tmp_path):
    return [
        _write_run(tmp_path / "cs_a", "cs", [(0.12, 0.886), (0.065, 0.889), (0.044, 0.887)],
                   dense={"remaining": 1.0, "test_accuracy": 0.876, "epochs": 12}),
        _write_run(tmp_path / "imp", "imp", [(0.8, 0.883), (0.64, 0.880), (0.512, 0.878)]),
        _write_run(tmp_path / "ss", "iss", [(0.6, 0.41)], supermask=True),
        _write_run(tmp_path / "csm", "cs", [(0.3, 0.78)], supermask=True),
    ]


def test_envelope_keeps_the_best_ticket_at_each_sparsity():
    points = [(4.4, 88.7), (6.5, 88.9), (12.0, 88.6), (13.0, 89.1), (50.0, 89.0)]
    assert report.pareto_envelope(points) == [(4.4, 88.7), (6.5, 88.9), (13.0, 89.1)]


def test_report_writes_figures_and_a_table_that_matches_them(runs, tmp_path):
    out = tmp_path / "report"
    written = report.write_report(runs, str(out))
    names = sorted(os.path.basename(p) for p in written)
    assert names == ["accuracy_vs_remaining.png", "kept_per_layer.png",
                     "remaining_per_layer_cs_a.png",
                     "remaining_per_layer_csm.png", "remaining_per_layer_imp.png",
                     "remaining_per_layer_ss.png", "results.md", "search_cost.png",
                     "supermask.png"]
    for path in written:
        if path.endswith(".png"):
            with open(path, "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    runs_section = table.split("## Runs")[1]
    rows = [line for line in runs_section.splitlines() if line.startswith("| cs_a | cs |")]
    assert [re.split(r"\s*\|\s*", row)[4:6] for row in rows] == [
        ["12.00", "88.60"], ["6.50", "88.90"], ["4.40", "88.70"]]
    assert "| cs_a | dense | - | 100.00 | 87.60 |" in table
    assert "| ss | iss (supermask) | 1 | 60.00 | 41.00 |" in table
    assert os.listdir(out / "tensorboard")


@pytest.mark.slow
def test_report_app_and_bad_run_directory(runs, tmp_path):
    done = subprocess.run([sys.executable, "-m", "apps.report", *runs[:2],
                           f"--out={tmp_path / 'r'}", "--notensorboard"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "r" / "accuracy_vs_remaining.png").exists()
    bad = subprocess.run([sys.executable, "-m", "apps.report", str(tmp_path / "nothing"),
                          f"--out={tmp_path / 'r2'}"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "is not a keras_lottery results.json" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_runs_named_alike_get_labels_that_tell_them_apart(tmp_path):
    first = _write_run(tmp_path / "sweep" / "trial_0" / "run", "cs", [(0.1, 0.88)])
    second = _write_run(tmp_path / "sweep" / "trial_1" / "run", "cs", [(0.2, 0.87)])
    other = _write_run(tmp_path / "quickstart", "cs", [(0.3, 0.86)])
    labels = [label for label, _ in report.load_runs([first, second, other])]
    assert labels == ["trial_0/run", "trial_1/run", "quickstart"]


def _seeds(tmp_path, name, per_seed, **flags):
    return [_write_run(tmp_path / name / f"seed_{seed}", "cs", rounds, seed=seed, **flags,
                       dense={"remaining": 1.0, "test_accuracy": 0.87 + 0.01 * seed, "epochs": 12})
            for seed, rounds in enumerate(per_seed)]


def test_runs_that_differ_only_in_seed_are_one_setting_with_mean_and_spread(tmp_path):
    ours = _seeds(tmp_path, "ours", [[(0.10, 0.880), (0.05, 0.870)],
                                     [(0.12, 0.890), (0.06, 0.880)],
                                     [(0.11, 0.885), (0.04, 0.860)]], mask_penalty=1e-7)
    other = _seeds(tmp_path, "official", [[(0.20, 0.860)], [(0.22, 0.870)]], mask_penalty=1e-6)
    settings = replicates.group_runs(report.load_runs(ours + other))
    assert [(s.label, s.seeds) for s in settings] == [("ours", [0, 1, 2]), ("official", [0, 1])]
    first = settings[0].round_statistics()
    assert first[0]["remaining"] == pytest.approx((0.11, 0.01))
    assert first[1]["ticket_accuracy"][0] == pytest.approx(0.87)
    assert first[1]["ticket_accuracy"][1] == pytest.approx(np.std([0.87, 0.88, 0.86], ddof=1))
    table = markdown_table(report.load_runs(ours + other))
    assert "| ours | cs | 3 | 1 | 11.00 ± 1.00 | 88.50 ± 0.50 |" in table
    assert "| official | cs | 2 | 1 | 21.00 ± 1.41 | 86.50 ± 0.71 |" in table
    assert "| ours | dense | 3 | - | 100.00 | 88.00 ± 1.00 |" in table
    assert "| ours/seed_2 | cs | 2 | 4.00 | 86.00 |" in table  # every run is kept below


def test_figures_plot_setting_means_in_colours_that_never_repeat(tmp_path):
    dirs = []
    for index in range(12):  # more settings than matplotlib's 10 default colours
        dirs += _seeds(tmp_path, f"s{index}", [[(0.1 + 0.01 * index, 0.88)],
                                                [(0.1 + 0.01 * index, 0.86)]],
                       mask_penalty=index)
    settings = replicates.group_runs(report.load_runs(dirs))
    figure = figures.accuracy_vs_remaining(settings)
    axis = figure.axes[0]
    drawn = [tuple(line.get_color()) if not isinstance(line.get_color(), str)
             else line.get_color() for line in axis.get_lines() if line.get_label()[0] != "_"]
    legend = [text.get_text() for text in axis.get_legend().get_texts()]
    assert len(legend) == 12 + 1 + 12  # settings, the CS envelope, every dense reference
    assert "s3 (2 seeds)" in legend and "dense, s0 (2 seeds): 87.50 ± 0.71" in legend
    colours = [tuple(handle.get_color()) if hasattr(handle, "get_color") else None
               for handle in axis.get_legend().legend_handles]
    assert len(set(map(str, colours))) == len(colours)
    assert drawn
    # The envelope runs through setting means (87.0 each), not through the best single seed (88).
    envelope = [line for line in axis.get_lines() if "best mean" in line.get_label()][0]
    assert set(np.round(envelope.get_ydata(), 6)) == {87.0}


def test_settings_that_differ_only_in_s0_give_one_curve_per_round(tmp_path):
    dirs = []
    for index, s0 in enumerate((0.0, -0.02, -0.05)):
        dirs += _seeds(tmp_path, f"s0_{s0}", [[(0.3 - 0.1 * index, 0.88), (0.2 - 0.05 * index, 0.87)],
                                               [(0.3 - 0.1 * index, 0.86), (0.2 - 0.05 * index, 0.85)]],
                       mask_init=s0)
    dirs += _seeds(tmp_path, "other", [[(0.5, 0.8)]], mask_init=0.0, mask_penalty=1.0)
    settings = replicates.group_runs(report.load_runs(dirs))
    figure = figures.rounds_across(settings)
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["cs, round 1", "cs, round 2"]
    np.testing.assert_allclose(lines[0].get_xdata(), [10.0, 20.0, 30.0])  # by sparsity
    np.testing.assert_allclose(lines[0].get_ydata(), [87.0, 87.0, 87.0])  # seed means
    assert figures.rounds_across(settings[-1:]) is None


def test_training_curves_put_rounds_on_one_timeline_with_the_seeds_spread(tmp_path):
    def with_history(directory, shift):
        path = directory + "/results.json"
        results = json.loads(open(path).read())
        for record in results["rounds"]:  # 2 epochs per round; round r's epochs come after r-1's
            record["history"] = [{"epoch": e, "val_accuracy": 0.5 + 0.1 * e + shift,
                                  "remaining": 1.0 / (record["round"] * e)} for e in (1, 2)]
        open(path, "w").write(json.dumps(results))

    dirs = _seeds(tmp_path, "cs", [[(0.5, 0.8), (0.25, 0.8)]] * 3, epochs=2)
    for seed, directory in enumerate(dirs):
        with_history(directory, 0.01 * seed)
    plain = _write_run(tmp_path / "old", "imp", [(0.5, 0.8)])  # a run without a history
    settings = replicates.group_runs(report.load_runs(dirs + [plain]))
    epochs, mean, spread = settings[0].epoch_statistics("val_accuracy")
    assert epochs.tolist() == [1, 2, 3, 4]
    assert mean == pytest.approx([0.61, 0.71, 0.61, 0.71])
    assert spread == pytest.approx([0.01] * 4)
    assert settings[0].epoch_statistics("remaining")[1] == pytest.approx([1, 0.5, 0.5, 0.25])
    assert settings[1].epoch_statistics("val_accuracy")[0].size == 0
    figure = figures.training_curves(settings)
    top = figure.axes[0]
    assert [line.get_label() for line in top.get_lines()] == ["CS: cs (3 seeds)"]
    assert len(top.collections) == 1  # the spread band
    assert figures.training_curves(settings[1:]) is None
    # A seed whose early rounds ran before histories were recorded is named in the legend.
    results = json.loads(open(dirs[0] + "/results.json").read())
    results["rounds"][0].pop("history")
    open(dirs[0] + "/results.json", "w").write(json.dumps(results))
    partial = replicates.group_runs(report.load_runs(dirs))
    assert partial[0].epoch_statistics("val_accuracy")[1][0] == pytest.approx(0.615)
    label = figures.training_curves(partial).axes[0].get_lines()[0].get_label()
    assert label == "CS: cs (3 seeds, 2 with every round's history)"


def test_supermask_figure_draws_one_curve_per_method_ordered_by_sparsity(tmp_path):
    dirs = []
    for penalty, remaining, accuracy in ((1e-5, 0.1, 0.84), (1e-6, 0.4, 0.83), (1e-4, 0.02, 0.77)):
        dirs += [_write_run(tmp_path / f"cs_{penalty}" / f"seed_{seed}", "cs",
                            [(remaining, accuracy + 0.01 * seed)], supermask=True, seed=seed,
                            mask_penalty=penalty) for seed in range(3)]
    for s0, remaining in ((0.0, 0.5), (-2.0, 0.06)):
        dirs += [_write_run(tmp_path / f"ss_{s0}" / f"seed_{seed}", "iss", [(remaining, 0.8)],
                            supermask=True, seed=seed, mask_init=s0) for seed in range(3)]
    figure = figures.supermask(replicates.group_runs(report.load_runs(dirs)))
    axis = figure.axes[0]
    assert axis.get_legend_handles_labels()[1] == ["CS (lambda marked, 3 seeds)",
                                                   "SS (s0 marked, 3 seeds)"]
    cs_line, ss_line = axis.get_lines()[0], [
        line for line in axis.get_lines() if len(line.get_xdata()) == 2][0]
    assert cs_line.get_xdata() == pytest.approx([60, 90, 98])  # sparsity, ascending
    assert cs_line.get_ydata() == pytest.approx([84, 85, 78])  # means over the seeds
    assert ss_line.get_xdata() == pytest.approx([50, 94])
    assert sorted(text.get_text() for text in axis.texts) == ["-2", "0", "0.0001", "1e-05", "1e-06"]


def test_deployment_figure_averages_the_measured_speedups_and_sizes(tmp_path):
    dirs = []
    for granularity, speed in (("unit", 3.0), ("weight", 1.0)):
        for seed in (0, 1, 2):
            path = _write_run(tmp_path / granularity / f"seed_{seed}", "cs",
                              [(0.1, 0.88), (0.05, 0.87)], seed=seed, mask_granularity=granularity)
            with open(os.path.join(path, "results.json")) as handle:
                results = json.load(handle)
            for record in results["rounds"]:
                record["deployment"] = {
                    "speedup": {"keras": {"1": 1.0, "256": speed * record["round"] + 0.1 * seed},
                                "tflite": {"1": speed + seed, "256": speed}},
                    "file_bytes": {"tflite": 100, "dense_tflite": 1000 if speed > 1 else 100}}
            with open(os.path.join(path, "results.json"), "w") as handle:
                json.dump(results, handle)
            dirs.append(path)
    settings = replicates.group_runs(report.load_runs(dirs))
    unit = next(s for s in settings if s.flags["mask_granularity"] == "unit")
    rows = unit.round_statistics()
    assert rows[1]["speedup_keras_256"] == pytest.approx((6.1, 0.1))
    assert rows[0]["speedup_tflite_1"] == pytest.approx((4.0, 1.0))
    assert rows[0]["tflite_size"] == pytest.approx((0.1, 0.0))
    written = report.write_report(dirs, str(tmp_path / "out"), tensorboard=False)
    assert str(tmp_path / "out" / "deployment.png") in written
    older = _write_run(tmp_path / "older", "cs", [(0.1, 0.88)])  # no deployment records
    assert "deployment.png" not in " ".join(report.write_report([older], str(tmp_path / "o2"),
                                                                 tensorboard=False))


def test_kept_per_layer_draws_each_settings_last_ticket_layer_by_layer(tmp_path):
    from keras_lottery.report.layer_figures import kept_per_layer

    runs = [_write_run(tmp_path / f"cs_{seed}", "cs", [(0.2, 0.8), (0.1, 0.85 + seed / 100)],
                       seed=seed) for seed in (0, 1)]
    runs.append(_write_run(tmp_path / "imp", "imp", [(0.5, 0.8)]))
    settings = replicates.group_runs(report.load_runs(runs))
    figure = kept_per_layer(settings)
    axis = figure.axes[0]
    assert [tick.get_text() for tick in axis.get_yticklabels()] == ["fc1", "output"]
    widths = sorted(round(bar.get_width(), 6) for bar in axis.patches)
    assert widths == [5.0, 10.0, 25.0, 50.0]  # last rounds: cs 10% (fc1 half), imp 50%


def test_budgets_get_a_column_and_a_figure_of_accuracy_against_the_deployed_cost(tmp_path):
    dirs = []
    for seed in (0, 1):
        path = _write_run(tmp_path / f"seed_{seed}", "cs", [(0.5, 0.88), (0.2, 0.87)], seed=seed,
                          target_macs=0.25)
        with open(os.path.join(path, "results.json")) as handle:
            results = json.load(handle)
        for record, (target, achieved) in zip(results["rounds"], ((0.5, 0.49), (0.25, 0.24))):
            record["budget"] = {"kind": "macs", "target": target, "final_target": 0.25,
                                "achieved": achieved + 0.01 * seed}
        with open(os.path.join(path, "results.json"), "w") as handle:
            json.dump(results, handle)
        dirs.append(path)
    (setting,) = replicates.group_runs(report.load_runs(dirs))
    assert setting.round_statistics()[1]["budget_achieved"][0] == pytest.approx(0.245)
    written = report.write_report(dirs, str(tmp_path / "out"), tensorboard=False)
    assert str(tmp_path / "out" / "budgets.png") in written
    table = open(tmp_path / "out" / "results.md").read()
    assert "| 0.250 -> 0.240 macs |" in table and "budget: target -> deployed" in table


def test_a_language_models_runs_get_a_bits_per_character_column(tmp_path):
    paths = _seeds(tmp_path, "gpt", [[(0.30, 0.50)], [(0.32, 0.52)]], dataset="kjv_chars")
    for index, path in enumerate(paths):  # what the search writes for --dataset=kjv_chars
        file = tmp_path / path / "results.json"
        results = json.loads(file.read_text())
        results["rounds"][0]["ticket_bits_per_char"] = 2.0 + 0.1 * index
        results["dense"]["test_bits_per_char"] = 1.9
        file.write_text(json.dumps(results))
    table = markdown_table(report.load_runs(paths))
    assert ("| gpt | cs | 2 | 1 | 31.00 ± 1.41 | 51.00 ± 1.41 | 50.00 ± 1.41 | 10 ± 0 | "
            "2.050 ± 0.071 |") in table
    assert "| gpt | dense | 2 | - | 100.00 | 87.50 ± 0.71 | - | 12 | 1.900 ± 0.000 |" in table
    assert "| seed_1 | cs | 1 | 32.00 | 52.00 | 51.00 | 10 | 2.100 |" in table
    assert "| seed_1 | dense | - | 100.00 | 88.00 | - | 12 | 1.900 |" in table
    images = markdown_table(report.load_runs(_seeds(tmp_path, "lenet", [[(0.3, 0.9)]])))
    assert "bits/char" not in images


def test_a_language_models_deployment_and_budget_figures_plot_bits_per_character(tmp_path):
    from keras_lottery.report.deployment_figures import accuracy_vs_budget, accuracy_vs_speed
    from keras_lottery.report.figures_common import ticket_quality

    dirs = []
    for seed in (0, 1):
        path = _write_run(tmp_path / f"seed_{seed}", "cs", [(0.4, 0.45), (0.2, 0.40)],
                          seed=seed, dataset="kjv_chars", target_macs=0.25)
        results = json.loads(open(os.path.join(path, "results.json")).read())
        for record in results["rounds"]:
            record["ticket_bits_per_char"] = 2.7 + 0.1 * record["round"] + 0.02 * seed
            record["budget"] = {"kind": "macs", "target": 0.5 / record["round"],
                                "final_target": 0.25, "achieved": 0.5 / record["round"]}
            record["deployment"] = {"speedup": {"keras": {"64": 1.5 * record["round"]},
                                                "tflite": {"1": 2.0 * record["round"]}},
                                    "file_bytes": {"tflite": 10, "dense_tflite": 30}}
        open(os.path.join(path, "results.json"), "w").write(json.dumps(results))
        dirs.append(path)
    settings = replicates.group_runs(report.load_runs(dirs))
    for figure in (accuracy_vs_speed(settings), accuracy_vs_budget(settings)):
        axis = figure.axes[0]
        assert "bits/char" in axis.get_ylabel()
        line = axis.get_lines()[0]
        np.testing.assert_allclose(line.get_ydata(), [2.81, 2.91])  # means, not percents
    images = replicates.group_runs(report.load_runs(
        [_write_run(tmp_path / "lenet", "cs", [(0.1, 0.88)], target_macs=0.25)]))
    assert "bits/char" not in ticket_quality(images)[1]
