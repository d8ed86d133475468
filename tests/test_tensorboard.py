"""TensorBoard as a researcher opens it: a finished search served on 127.0.0.1, read through
TensorBoard's own HTTP data API (runs, tags, HParams metrics, the custom scalars layout)."""

import json
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from conftest import tiny_config

from keras_lottery import search


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _get(port, path, body=None):
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture
def served_run(idx_dir, tmp_path):
    """A 2-round search with tickets and the dense baseline, and TensorBoard serving it."""
    out = tmp_path / "run"
    search.run(tiny_config(idx_dir, out, rounds=2, ticket_epochs=1, dense_baseline=True))
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tensorboard.main", "--logdir", str(out / "tensorboard"),
         "--host", "127.0.0.1", "--port", str(port), "--reload_interval", "0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while True:
            try:
                if len(_get(port, "/data/runs")) == 4:
                    break
            except OSError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"TensorBoard did not serve: {server.stderr.read()[-2000:]}")
            time.sleep(1)
        yield port
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.mark.slow
def test_tensorboard_serves_four_runs_linked_hparams_and_the_layout(served_run):
    port = served_run
    assert sorted(_get(port, "/data/runs")) == ["dense", "search", "summary", "tickets"]
    tags = _get(port, "/data/plugin/scalars/tags")
    assert {"Results/ticket_accuracy", "Results/remaining", "Results/dense_accuracy",
            "Results/search_accuracy", "Results/search_epochs"} <= set(tags["summary"])
    assert {"accuracy/train", "accuracy/validation", "mask/remaining", "mask/temperature",
            "mask/penalty", "mask/remaining/fc1"} <= set(tags["search"])
    assert {"accuracy/train", "test/accuracy"} <= set(tags["tickets"])
    assert not [tag for run in tags.values() for tag in run if "vs_iterations" in tag]
    points = _get(port, "/data/plugin/scalars/scalars?run=summary&tag=Results/ticket_accuracy")
    assert [point[1] for point in points] == [1, 2]  # step = round
    histograms = _get(port, "/data/plugin/histograms/tags")
    assert {"mask/beta_s/fc1", "mask/beta_s/output"} <= set(histograms["search"])
    experiment = _get(port, "/data/plugin/hparams/experiment", {"experimentName": ""})
    metrics = [info["name"]["tag"] for info in experiment["metricInfos"]]
    assert metrics[:2] == ["Results/ticket_accuracy", "Results/remaining"]
    names = [info["name"] for info in experiment["hparamInfos"]]
    assert names[:5] == ["01_method", "02_model", "03_dataset", "04_mask_granularity",
                         "05_mask_init"]
    layout = _get(port, "/data/plugin/custom_scalars/layout")
    titles = [category["title"] for category in layout["category"]]
    assert titles[0].startswith("Results per round")
    first = layout["category"][0]["chart"][0]["multiline"]["tag"]
    assert first == ["^Results/(ticket|search|dense)_accuracy$"]
