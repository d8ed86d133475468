"""The Keras backends keras_lottery runs on, checked before Keras loads.

Keras 3 picks its backend from `KERAS_BACKEND`, else from `keras.json` in `KERAS_HOME`
(default `~/.keras`), else TensorFlow. The layers, callbacks, methods, tickets and the apps are
tested on `tensorflow` and `jax` (docs/guide.md, "Backends"); on any other backend importing
keras_lottery stops with one line saying so, before Keras fails deep inside its own import
(PyTorch's wheel on the package index brings CUDA's libraries, several GB, and is not tested).
"""

import json
import os

#: The backends the test suite runs on.
SUPPORTED = ("tensorflow", "jax")


def configured_backend():
    """The backend Keras will load (without importing Keras)."""
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    try:
        with open(os.path.join(home, "keras.json")) as handle:
            return json.load(handle).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def problem():
    """Why keras_lottery cannot run on the configured backend (one line), or None."""
    backend = configured_backend()
    if backend in SUPPORTED:
        return None
    source = "KERAS_BACKEND" if os.environ.get("KERAS_BACKEND") else "keras.json's backend"
    return (f"keras_lottery runs on Keras's {' and '.join(SUPPORTED)} backends, not "
            f"{backend!r} ({source}); set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax.")


def require_supported():
    """Raises `ImportError` (its `name` "keras_lottery") with `problem()` on an unsupported
    backend."""
    reason = problem()
    if reason:
        raise ImportError(reason, name="keras_lottery")
