"""`python -m apps.sweep`: the repository's short name for `keras_lottery.apps.sweep`
(installed: `keras-lottery-sweep`, or `python -m keras_lottery.apps.sweep`)."""

from apps import exit_on_unsupported_backend

exit_on_unsupported_backend()

from keras_lottery.apps.sweep import *  # noqa: E402,F403
from keras_lottery.apps.sweep import run_main  # noqa: E402

if __name__ == "__main__":
    run_main()
