"""`python -m apps.search`: the repository's short name for `keras_lottery.apps.search`
(installed: `keras-lottery-search`, or `python -m keras_lottery.apps.search`)."""

from apps import exit_on_unsupported_backend

exit_on_unsupported_backend()

from keras_lottery.apps.search import *  # noqa: E402,F403
from keras_lottery.apps.search import run_main  # noqa: E402

if __name__ == "__main__":
    run_main()
