"""The library on Keras's JAX backend: the same rounds give the same `s` and tickets as
TensorFlow, and the layer-level suite passes under JAX."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import numpy as np
import pytest

pytest.importorskip("jax")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "tests", "backend_rounds.py")


def _run(backend, out, *extra):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, SCRIPT, str(out), *extra], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return np.load(out)


@pytest.mark.slow
def test_two_cs_rounds_match_across_tensorflow_and_jax(tmp_path):
    on_tensorflow = _run("tensorflow", tmp_path / "tf.npz")
    on_jax = _run("jax", tmp_path / "jax.npz", f"--initial={tmp_path / 'tf.npz'}")
    assert str(on_tensorflow["backend"]) == "tensorflow" and str(on_jax["backend"]) == "jax"
    compared = [key for key in on_jax.files if key.startswith(("s", "ticket"))]
    assert len(compared) == 8  # s and ticket of both layers after rounds 1 and 2
    for key in compared:
        expected, actual = on_tensorflow[key], on_jax[key]
        if key.startswith("ticket"):
            np.testing.assert_array_equal(actual, expected, err_msg=key)
        else:  # within 1e-5 of the logits' scale (float32 sums in a different order)
            scale = max(1.0, float(np.abs(expected).max()))
            np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-5 * scale, err_msg=key)
    # the rounds did something: round 2's ticket has removed weights of the output layer
    assert on_jax["ticket2/cs_dense_1"].mean() < 1.0


def _app(tmp_path, backend, *flags, module="apps.search"):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", module, "--flagfile=apps/flags/quickstart.cfg",
               f"--output_dir={tmp_path / 'run'}", *flags]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def _one_error_line(done, *words):
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and len(errors) == 1, done.stderr[-1500:]
    assert all(word in errors[0] for word in words), errors[0]
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("module", ["apps.search", "apps.sweep", "apps.report"])
def test_an_unsupported_backend_is_one_line(tmp_path, module):
    """Keras would fail deep in its own import (torch is not installed); the repository's apps
    say so in one line, and importing the library raises one clear ImportError."""
    done = _app(tmp_path, "torch", module=module)
    _one_error_line(done, "'torch'", "KERAS_BACKEND=jax")
    assert not (tmp_path / "run").exists()
    env = dict(os.environ, KERAS_BACKEND="torch")
    imported = subprocess.run([sys.executable, "-c", "import keras_lottery"], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=120)
    last = imported.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: keras_lottery runs on") and "'torch'" in last


def test_masks_added_in_place_follow_the_distribution():
    """`s` added to a built model inside a `DataParallel` scope lives on both devices, as `w`
    does, and the model trains there (no "incompatible devices", keras-team/keras#18681)."""
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tests",
                                                        "backend_in_place_mirrored.py")],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "OK 2 2" in done.stdout, done.stdout[-500:]
    assert "REFUSED layer 'spread' (Dense): its weights are spread over 2 devices" in done.stdout


def test_multi_worker_is_refused_on_jax(tmp_path):
    done = _app(tmp_path, "jax", "--distribute=multi_worker")
    _one_error_line(done, "--distribute='multi_worker'", "KERAS_BACKEND=jax")
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_the_search_app_runs_on_jax_and_resumes(tmp_path):
    """The quickstart's app on JAX, cut short: a round, its ticket retrained, the deployment
    export (TFLite through jax2tf) and TensorBoard; a second, longer call resumes after it."""
    short = ("--train_examples=1000", "--validation_examples=500", "--epochs=2",
             "--ticket_epoch=1", "--ticket_epochs=1", "--dense_baseline=false", "--verbose=0",
             "--mask_init=0.05")
    done = _app(tmp_path, "jax", "--rounds=1", *short)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "running 1 step per call on KERAS_BACKEND=jax" in done.stderr + done.stdout
    run = tmp_path / "run"
    results = json.loads((run / "results.json").read_text())
    first = results["rounds"][0]
    assert results["environment"]["backend"] == "jax"
    assert 0 < first["remaining"] < 1 and first["ticket_accuracy"] > 0.3
    deployment = first["deployment"]
    assert deployment["file_bytes"]["tflite"] > 0 and "tflite_error" not in deployment
    assert (run / "tickets" / "round_1.npz").exists()
    assert any((run / "tensorboard").rglob("events.out.tfevents.*"))
    again = _app(tmp_path, "jax", "--rounds=2", *short)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming after round 1" in again.stderr + again.stdout
    rounds = json.loads((run / "results.json").read_text())["rounds"]
    assert [r["round"] for r in rounds] == [1, 2] and rounds[0] == first
    assert rounds[1]["remaining"] < first["remaining"]


#: Tests of the layers, mask groups, costs, budgets and callbacks that also run under JAX (the
#: ones marked `tensorflow_only` skip: tf.GradientTape, tf.function, TFLite, the search app).
JAX_SUITE = ("test_layers.py", "test_granularity.py", "test_attention_heads.py",
             "test_ticket_rule.py", "test_costs.py", "test_budgets.py", "test_callbacks.py",
             "test_methods.py", "test_convert.py", "test_shrink.py", "test_in_place.py")


@pytest.mark.slow
def test_the_layer_suite_passes_under_jax(tmp_path):
    """One pytest run of `JAX_SUITE` under `KERAS_BACKEND=jax` (fast tier of those files but
    the `big_model` tests, whose shrink plans are numpy the TensorFlow run checks):
    every test passes or is a marked TensorFlow-only skip. Among them the `Budget` callback
    writes `lambda` mid-epoch, which JAX's trainer sees only after the callback attaches its
    state (`RoundClock._attach_state`)."""
    report = tmp_path / "jax.xml"
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow and not big_model",
         f"--junitxml={report}", *[os.path.join(ROOT, "tests", name) for name in JAX_SUITE]],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    suite = ElementTree.parse(report).getroot().find("testsuite")
    failures = [case.get("name") for case in suite.iter("testcase")
                if case.find("failure") is not None or case.find("error") is not None]
    assert done.returncode == 0 and not failures, (failures, done.stdout[-3000:])
    skipped = [case for case in suite.iter("testcase") if case.find("skipped") is not None]
    assert all("TensorFlow backend" in case.find("skipped").get("message", "")
               for case in skipped)
    assert int(suite.get("tests")) - len(skipped) >= 60
