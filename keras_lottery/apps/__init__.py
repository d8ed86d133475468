"""The command-line apps: `search`, `sweep` and `report` (thin: flags in, library calls out).

Installed, each is a console command (`keras-lottery-search`, `keras-lottery-sweep`,
`keras-lottery-report`) and a module (`python -m keras_lottery.apps.search`); in the
repository, `python -m apps.search` is the same app under its short name.
"""

import sys


def run(main, doc, flags_parser=None):
    """`absl.app.run(main)`, with the app's docstring as the `--help` text also when the app
    runs as a console command (whose `__main__` is a generated wrapper without one)."""
    from absl import app

    entry = sys.modules.get("__main__")
    if entry is not None and not getattr(entry, "__doc__", None):
        entry.__doc__ = doc
    if flags_parser is None:
        app.run(main)
    else:
        app.run(main, flags_parser=flags_parser)
