"""Figures and a Markdown table from the results of one or more searches.

    python -m apps.report RUN_DIR [RUN_DIR ...] --out=DIR

Writes DIR/accuracy_vs_remaining.png, search_cost.png, remaining_per_layer.png,
supermask.png (for supermask runs), results.md and the same figures as
TensorBoard images under DIR/tensorboard.
"""

import sys

from absl import flags

from keras_lottery import apps
from keras_lottery.report import ReportError, write_report

flags.DEFINE_string("out", "report", "Directory for the figures and the table.")
flags.DEFINE_boolean("tensorboard", True, "Also write the figures as TensorBoard images.")
FLAGS = flags.FLAGS


def main(argv):
    try:
        written = write_report(argv[1:], FLAGS.out, tensorboard=FLAGS.tensorboard)
    except ReportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for path in written:
        print(path)
    return 0


def run_main():
    """Console-script entry point (`keras-lottery-report`)."""
    apps.run(main, __doc__)


if __name__ == "__main__":
    run_main()
