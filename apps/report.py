"""`python -m apps.report`: the repository's short name for `keras_lottery.apps.report`
(installed: `keras-lottery-report`, or `python -m keras_lottery.apps.report`)."""

from apps import exit_on_unsupported_backend

exit_on_unsupported_backend()

from keras_lottery.apps.report import *  # noqa: E402,F403
from keras_lottery.apps.report import run_main  # noqa: E402

if __name__ == "__main__":
    run_main()
