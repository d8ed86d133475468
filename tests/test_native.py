"""The native CS kernel: the values and gradients of TensorFlow's ops, used only where it may be."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_lottery.layers import REMOVED_LOGIT, CSDense, native
from keras_lottery.layers import continuous as cs


def _values_and_gradients(function, w, s, beta, lam, upstream, penalty_scale):
    w, s = tf.Variable(w), tf.Variable(s)
    with tf.GradientTape() as tape:
        effective, penalty = function(w.value(), s.value(), tf.constant(beta), tf.constant(lam))
        loss = tf.reduce_sum(effective * upstream) + penalty_scale * penalty
    g_w, g_s = tape.gradient(loss, [w, s])
    return [np.asarray(x) for x in (effective, penalty, g_w, g_s)]


@pytest.mark.parametrize("shape", [(300, 101), (3, 3, 8, 16), (7,)])
def test_native_kernel_matches_tensorflow_ops(shape):
    assert native.load() is not None, native.unavailable_reason()
    rng = np.random.RandomState(0)
    w = rng.randn(*shape).astype("float32")
    s = (0.2 * rng.randn(*shape)).astype("float32")
    s.flat[0] = REMOVED_LOGIT  # a pruned weight: mask and gradient exactly 0
    upstream = rng.randn(*shape).astype("float32")
    expected = _values_and_gradients(cs._fused_continuous, w, s, 7.5, 0.01, upstream, 3.0)
    got = _values_and_gradients(native.continuous_mask, w, s, 7.5, 0.01, upstream, 3.0)
    for name, a, b in zip(("w*m", "penalty", "dw", "ds"), got, expected):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=1e-6, err_msg=name)
    assert got[0].flat[0] == 0 and got[3].flat[0] == 0


def _op_types(layer, x, jit_compile=False):
    @tf.function(jit_compile=jit_compile)
    def train_call(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x, training=True)) + sum(layer.losses)
        return tape.gradient(loss, layer.trainable_variables)

    result = train_call(x)  # runs, XLA included
    assert all(g is not None for g in result)
    return {op.type for op in train_call.get_concrete_function(x).graph.get_operations()}


def test_training_steps_use_the_kernel_only_outside_xla():
    layer = CSDense(5, mask_init=0.5, mask_penalty=1e-3)
    x = tf.constant(np.random.RandomState(0).randn(4, 3).astype("float32"))
    layer(x)
    assert "KerasLotteryContinuousMask" in _op_types(layer, x)
    assert "KerasLotteryContinuousMask" not in _op_types(layer, x, jit_compile=True)
    assert not any(op.startswith("KerasLottery")
                   for op in _op_types(CSDense(5, mask_rule="fixed"), x))


def test_turned_off_by_environment(monkeypatch):
    monkeypatch.setenv("KERAS_LOTTERY_NATIVE", "0")
    monkeypatch.setattr(native, "_state", {"loaded": False, "library": None, "reason": None})
    layer = CSDense(5, mask_init=0.5)
    x = tf.constant(np.ones((2, 3), "float32"))
    layer(x)
    assert "KerasLotteryContinuousMask" not in _op_types(layer, x)
    assert native.load() is None and "KERAS_LOTTERY_NATIVE" in native.unavailable_reason()


def test_failed_build_falls_back_to_tensorflow_ops(monkeypatch, tmp_path):
    monkeypatch.setenv("CXX", "no-such-compiler")
    monkeypatch.setenv("KERAS_LOTTERY_CACHE", str(tmp_path))
    monkeypatch.setattr(native, "_state", {"loaded": False, "library": None, "reason": None})
    assert native.load() is None
    assert "no-such-compiler" in native.unavailable_reason()
    assert not list(tmp_path.rglob("*.so"))
    # CS still trains, on TensorFlow's ops.
    model = keras.Sequential([keras.Input((3,)), CSDense(2, mask_init=0.5, mask_penalty=1e-3)])
    model.compile(optimizer="sgd", loss="mse")
    history = model.fit(np.ones((8, 3)), np.zeros((8, 2)), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_cached_kernel_is_loaded_not_rebuilt(monkeypatch, tmp_path):
    monkeypatch.setenv("KERAS_LOTTERY_CACHE", str(tmp_path))
    path = native.library_path()
    assert path.startswith(str(tmp_path))
    native._build(path)
    assert [p.name for p in tmp_path.rglob("*.so")] == ["continuous_mask.so"]  # no partial left

    def no_build(path):
        raise AssertionError("rebuilt a cached kernel")

    loaded = []
    # A second copy of the library in this process would register its kernels twice.
    monkeypatch.setattr(native, "_build", no_build)
    monkeypatch.setattr(native.tf, "load_op_library", lambda p: loaded.append(p) or "library")
    monkeypatch.setattr(native, "_state", {"loaded": False, "library": None, "reason": None})
    assert native.load() == "library" and loaded == [path]
