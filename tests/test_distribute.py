"""MirroredStrategy on 2 logical CPU devices gives the same search as one device."""

import json
import os
import subprocess
import sys

import pytest

#: Multi-process runs, kills and resumes: the whole suite runs them, the fast tier does not.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _run(idx_dir, out, strategy, method, overrides=None, backend="tensorflow"):
    command = [sys.executable, os.path.join(ROOT, "tests", "distributed_run.py"), idx_dir,
               str(out), strategy, method, json.dumps(overrides or {})]
    env = dict(os.environ, KERAS_BACKEND=backend)
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(l for l in done.stdout.splitlines() if l.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


@pytest.mark.parametrize("backend, method, overrides", [
    ("tensorflow", "cs", {}),
    ("tensorflow", "imp", {"prune_scope": "global", "rewind_epoch": 1}),
    ("tensorflow", "iss", {"mask_optimizer": "sgd", "mask_learning_rate": 5.0}),
    # keras.distribution.DataParallel over 2 XLA host devices; steps_per_execution=5 runs 1
    # step per call on JAX (beta is assigned before each step), so the ticket is unchanged
    ("jax", "cs", {"steps_per_execution": 5}),
    ("jax", "iss", {"mask_optimizer": "sgd", "mask_learning_rate": 5.0}),
])
def test_mirrored_matches_single_device(idx_dir, tmp_path, backend, method, overrides):
    if backend == "jax":
        pytest.importorskip("jax")
    single = _run(idx_dir, tmp_path / "single", "none", method, overrides, backend)
    mirrored = _run(idx_dir, tmp_path / "mirrored", "mirrored", method, overrides, backend)
    assert single["backend"] == mirrored["backend"] == backend
    assert single["replicas"] == 1 and mirrored["replicas"] == 2
    for one, two in zip(single["rounds"], mirrored["rounds"]):
        # Every replica draws the same ISS samples (one seed state), so all methods land
        # on the same ticket; accuracy and loss differ by float summation order only.
        assert one["remaining"] == two["remaining"], (one, two)
        assert one["remaining_per_layer"] == two["remaining_per_layer"]
        assert abs(one["search_accuracy"] - two["search_accuracy"]) <= 0.005, (one, two)
        assert two["search_loss"] == pytest.approx(one["search_loss"], rel=1e-3)
        if one["ticket_accuracy"] is not None:
            assert abs(one["ticket_accuracy"] - two["ticket_accuracy"]) <= 0.005
        print(method, one["remaining"], two["remaining"], one["search_loss"], two["search_loss"])
    for name in ("round_1.npz", "round_2.npz"):
        assert (tmp_path / "mirrored" / "tickets" / name).exists()
