"""Room `apps`: the command-line apps `search`, `sweep` and `report` (thin: flags in, library
calls out, one `error:` line and an exit code out).

Installed, each is a console command (`keras-lottery-search`, `keras-lottery-sweep`,
`keras-lottery-report`) and a module (`python -m keras_lottery.apps.search`); in the
repository, `python -m apps.search` is the same app under its short name (`apps/`,
which only quiets TensorFlow's C++ logs before it loads).
May import: every room.
"""

import sys


def run(main, doc, flags_parser=None):
    """`absl.app.run(main)`, with the app's docstring as the `--help` text however the app was
    started (absl shows `__main__`'s: a console command's generated wrapper has none, and
    `python -m apps.search` has the short name's)."""
    from absl import app

    entry = sys.modules.get("__main__")
    if entry is not None:
        entry.__doc__ = doc
    if flags_parser is None:
        app.run(main)
    else:
        app.run(main, flags_parser=flags_parser)
