"""Room `apps`: the command-line apps `search`, `sweep` and `report` (thin: flags in, library
calls out, one `error:` line and an exit code out).

Installed, each is a console command (`keras-lottery-search`, `keras-lottery-sweep`,
`keras-lottery-report`) and a module (`python -m keras_lottery.apps.search`); in the
repository, `python -m apps.search` is the same app under its short name (`apps/`,
which only quiets TensorFlow's C++ logs before it loads).
May import: every room.
"""

import sys

#: The Keras backends the training apps run on (the library's layers also run on JAX).
APP_BACKENDS = ("tensorflow",)


def unsupported_backend():
    """The one-line reason the training apps cannot run on the active Keras backend, or None.
    They drive `tf.distribute` and TensorFlow's summaries; issue 31 brings them to JAX."""
    import keras

    backend = keras.backend.backend()
    if backend in APP_BACKENDS:
        return None
    return (f"KERAS_BACKEND={backend} is not supported by this app yet: it runs on "
            f"{', '.join(APP_BACKENDS)} only (unset KERAS_BACKEND or set it to tensorflow); "
            "the library's layers, callbacks and tickets do run on jax.")


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
