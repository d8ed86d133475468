"""The repository's short names for the apps (`python -m apps.search`, `apps.sweep`,
`apps.report`): each quiets TensorFlow's C++ logs and checks the Keras backend before
anything loads, then is `keras_lottery.apps.<name>`."""

import importlib.util
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow loads


def exit_on_unsupported_backend():
    """Exits with one `error:` line (code 2) when keras_lottery does not run on the configured
    Keras backend (`keras_lottery/backends.py`, read without importing the package)."""
    path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        "keras_lottery", "backends.py")
    spec = importlib.util.spec_from_file_location("_keras_lottery_backends", path)
    backends = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(backends)
    reason = backends.problem()
    if reason:
        print(f"error: {reason}", file=sys.stderr)
        raise SystemExit(2)
