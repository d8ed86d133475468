"""Figures and the table from given results.json files."""

import json
import os
import re
import subprocess
import sys

import pytest

from keras_lottery import report

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _write_run(directory, method, rounds, supermask=False, dense=None):
    directory.mkdir(parents=True)
    results = {
        "flags": {"method": method, "supermask": supermask},
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
    assert names == ["accuracy_vs_remaining.png", "remaining_per_layer.png", "results.md",
                     "search_cost.png", "supermask.png"]
    for path in written:
        if path.endswith(".png"):
            with open(path, "rb") as handle:
                assert handle.read(8) == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    rows = [line for line in table.splitlines() if line.startswith("| cs_a | cs |")]
    assert [re.split(r"\s*\|\s*", row)[4:6] for row in rows] == [
        ["12.00", "88.60"], ["6.50", "88.90"], ["4.40", "88.70"]]
    assert "| cs_a | dense | - | 100.00 | 87.60 |" in table
    assert "| ss | iss (supermask) | 1 | 60.00 | 41.00 |" in table
    assert os.listdir(out / "tensorboard")


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
