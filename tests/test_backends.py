"""The library on Keras's JAX backend: the same rounds give the same `s` and tickets as
TensorFlow, and the layer-level suite passes under JAX."""

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


@pytest.mark.parametrize("app_module", ["apps.search", "apps.sweep"])
def test_training_apps_refuse_jax_in_one_line(tmp_path, app_module):
    out = tmp_path / "run"
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", app_module, "--flagfile=apps/flags/quickstart.cfg",
               f"--output_dir={out}"]
    if app_module == "apps.sweep":
        command.append(f"--sweep_dir={out}")
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "KERAS_BACKEND=jax" in errors[0], done.stderr[-1500:]
    assert "Traceback" not in done.stderr
    assert not out.exists()


#: Tests of the layers, mask groups, costs, budgets and callbacks that also run under JAX (the
#: ones marked `tensorflow_only` skip: tf.GradientTape, tf.function, TFLite, the search app).
JAX_SUITE = ("test_layers.py", "test_granularity.py", "test_attention_heads.py",
             "test_ticket_rule.py", "test_costs.py", "test_budgets.py")


@pytest.mark.slow
def test_the_layer_suite_passes_under_jax(tmp_path):
    """One pytest run of `JAX_SUITE` under `KERAS_BACKEND=jax` (fast tier of those files):
    every test passes or is a marked TensorFlow-only skip. Among them the `Budget` callback
    writes `lambda` mid-epoch, which JAX's trainer sees only after the callback attaches its
    state (`RoundClock._attach_state`)."""
    report = tmp_path / "jax.xml"
    env = dict(os.environ, KERAS_BACKEND="jax", TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "not slow",
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
