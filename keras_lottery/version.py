"""Room `version`: the library's version, on the floor so every room may read it
(`run_directory` records it in `results.json`). May import: nothing of keras_lottery."""

__version__ = "0.1.0"
