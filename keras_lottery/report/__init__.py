"""Room `report`: tables and figures from the `results.json` of any searches (`apps.report`).

    writer      load_runs, write_report: the figures, results.md and TensorBoard images
    tables      the Markdown tables (per setting: mean ± spread over seeds; per run)
    figures     the figures (matplotlib), one setting per curve
    replicates  runs that differ only in --seed are one setting: Setting, group_runs
    pareto      pareto_envelope: the best accuracy at each sparsity

May import: `methods` (names in legends), `io_utils`.
"""

from keras_lottery.report.pareto import pareto_envelope
from keras_lottery.report.writer import ReportError, load_runs, write_report

__all__ = ["ReportError", "load_runs", "pareto_envelope", "write_report"]
