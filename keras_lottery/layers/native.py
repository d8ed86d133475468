"""The native CPU kernel of the CS mask: built on first use, cached, optional.

`kernels/continuous_mask.cc` computes a layer's `w * sigmoid(beta*s)`, the mask
and `lambda * sum(m)` in one pass over the weights, and their gradients in a
second one, where TensorFlow's ops make about nine (see BENCHMARKS.md). On the
first CS training step of a process, `load()` compiles it against the installed
TensorFlow with the system's C++ compiler (about 10 s) into a cache, and later
processes load it from there. Without a compiler, or when the build fails, CS
trains with TensorFlow's ops (`layers.continuous._fused_continuous`) and the reason is
logged once: the results are the same, the step is slower on CPU.

The kernel has no GPU or XLA version: steps compiled with `jit_compile`, and
processes that see a GPU, use TensorFlow's ops (`usable_for`).

Environment:
    KERAS_LOTTERY_NATIVE=0   never build or use the kernel
    KERAS_LOTTERY_CACHE      where built kernels go (default ~/.cache/keras_lottery)
    CXX                      the C++ compiler (default g++)
"""

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading

import tensorflow as tf
from absl import logging

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "kernels",
                      "continuous_mask.cc")

_lock = threading.Lock()
_state = {"loaded": False, "library": None, "reason": None}


def enabled():
    """False when the user turned the kernel off (`KERAS_LOTTERY_NATIVE=0`)."""
    return os.environ.get("KERAS_LOTTERY_NATIVE", "1").strip().lower() not in (
        "0", "false", "no", "off")


def _vector_flags():
    """AVX2/FMA where this CPU has them: Eigen then computes 8 sigmoids per instruction."""
    if platform.machine() not in ("x86_64", "AMD64"):
        return []
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = next((line.split(":", 1)[1].split() for line in cpuinfo
                          if line.startswith("flags")), [])
    except OSError:
        return []
    return ["-mavx2", "-mfma"] if {"avx2", "fma"} <= set(flags) else []


def _compiler():
    return os.environ.get("CXX", "g++")


def build_command(output):
    """The compiler command that builds the kernel library at `output`."""
    return ([_compiler(), "-shared", "-fPIC", "-O3", *_vector_flags(),
             "-Wno-deprecated-declarations", SOURCE, "-o", output]
            + tf.sysconfig.get_compile_flags() + tf.sysconfig.get_link_flags())


def library_path():
    """Where the kernel built for this source, TensorFlow and compiler command is cached."""
    cache = os.environ.get("KERAS_LOTTERY_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "keras_lottery")
    with open(SOURCE, "rb") as source:
        key = hashlib.sha256(source.read())
    key.update(" ".join([tf.__version__, sys.platform, platform.machine(),
                         *build_command("OUTPUT")]).encode())
    return os.path.join(cache, "native", key.hexdigest()[:16], "continuous_mask.so")


def _build(path):
    """Compiles the kernel to `path` atomically (concurrent builders are safe)."""
    compiler = _compiler()
    if shutil.which(compiler) is None:
        raise RuntimeError(f"no C++ compiler {compiler!r} on PATH (set CXX)")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    handle, partial = tempfile.mkstemp(suffix=".so", dir=os.path.dirname(path))
    os.close(handle)
    try:
        result = subprocess.run(build_command(partial), capture_output=True, text=True)
        if result.returncode != 0:
            errors = [line for line in result.stderr.splitlines() if "error" in line]
            raise RuntimeError(f"{compiler} failed: {(errors or ['(no message)'])[0].strip()}")
        os.replace(partial, path)
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def load():
    """The kernel's op library, built if needed; None when it is off or cannot be built."""
    with _lock:
        if not _state["loaded"]:
            _state["loaded"] = True
            if not enabled():
                _state["reason"] = "turned off by KERAS_LOTTERY_NATIVE"
            else:
                try:
                    path = library_path()
                    if not os.path.exists(path):
                        logging.info("keras_lottery: building the native CS kernel in %s", path)
                        _build(path)
                    _state["library"] = tf.load_op_library(path)
                except (OSError, RuntimeError, tf.errors.OpError) as error:
                    _state["reason"] = str(error).splitlines()[0]
                    logging.warning(
                        "keras_lottery: the native CS kernel is not available (%s); CS trains "
                        "with TensorFlow ops, with the same results and a slower step on CPU.",
                        _state["reason"])
        return _state["library"]


def unavailable_reason():
    """Why `load()` returned None (None when it loaded or was not tried)."""
    return _state["reason"]


def _in_xla_context():
    try:
        from tensorflow.python.ops import control_flow_util
        return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
    except (ImportError, AttributeError):
        return True  # cannot tell: take the path that XLA can compile


def usable_for(kernel):
    """Whether a training step may use the kernel for `kernel` (a float32 CPU tensor
    outside XLA), building it on first use."""
    return (kernel.dtype == tf.float32 and enabled() and not _in_xla_context()
            and not tf.config.list_logical_devices("GPU") and load() is not None)


def continuous_mask(w, s, beta, lam):
    """`(w * m, lambda * sum(m))` with `m = sigmoid(beta * s)`, and its gradient, natively."""
    library = load()

    @tf.custom_gradient
    def forward(w, s, beta, lam):
        effective, mask, penalty = library.keras_lottery_continuous_mask(w, s, beta, lam)

        def gradient(g_effective, g_penalty):
            g_w, g_s = library.keras_lottery_continuous_mask_grad(
                g_effective, w, mask, beta, lam * g_penalty)
            return g_w, g_s, None, None

        return (effective, penalty), gradient

    return forward(w, s, beta, lam)
