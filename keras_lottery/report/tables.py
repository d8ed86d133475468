"""The report's Markdown tables: one row per setting and round (mean ± spread over seeds),
then one row per run and round."""

from keras_lottery import methods
from keras_lottery.report import replicates


def table_rows(runs):
    """One row per round of every run: the numbers the figures plot."""
    rows = []
    for label, results in runs:
        for record in results["rounds"]:
            rows.append({
                "run": label, "method": _method_name(record["method"], record.get("supermask")),
                "round": record["round"], "remaining_percent": 100 * record["remaining"],
                "ticket_accuracy": record.get("ticket_accuracy"),
                "search_accuracy": record.get("search_accuracy"), "epochs": record["epochs"],
                "ticket_bits_per_char": record.get("ticket_bits_per_char"),
                "budget": record.get("budget")})
    return rows


def _method_name(method, supermask):
    return method + (" (supermask)" if supermask else "")


def method_title(method, supermask=False):
    """A method's name in tables and legends (SS for ISS's supermask, Zhou et al.'s)."""
    if method in methods.METHODS:
        return methods.get(method).title(supermask)
    return method.upper()


def _number(value):
    return "-" if value is None else f"{value:.3f}"


def _percent(value):
    return "-" if value is None else f"{100 * value:.2f}"


def _bits(statistic):
    """A (mean, spread) of bits per character, to 3 decimals."""
    return replicates.format_statistic(statistic, 1, 3)


def settings_table(settings):
    """Markdown: one row per setting and round, mean ± spread over the setting's seeds (and a
    ticket bits-per-character column when a setting is a language model's)."""
    fmt = replicates.format_statistic
    bits = any(row["ticket_bits_per_char"][0] is not None
               for setting in settings for row in setting.round_statistics())
    lines = ["| setting | method | seeds | round | remaining (%) | ticket accuracy (%) | "
             "search accuracy (%) | search epochs |" + (" ticket bits/char |" if bits else ""),
             "|---|---|---|---|---|---|---|---|" + ("---|" if bits else "")]
    for setting in settings:
        name = _method_name(setting.method, setting.supermask)
        for row in setting.round_statistics():
            lines.append(f"| {setting.label} | {name} | {row['seeds']} | {row['round']} | "
                         f"{fmt(row['remaining'])} | {fmt(row['ticket_accuracy'])} | "
                         f"{fmt(row['search_accuracy'])} | {fmt(row['epochs'], 1, 0)} |"
                         + (f" {_bits(row['ticket_bits_per_char'])} |" if bits else ""))
        dense = setting.dense_statistics()
        if dense:
            lines.append(f"| {setting.label} | dense | {dense['seeds']} | - | 100.00 | "
                         f"{fmt(dense['accuracy'])} | - | {dense['epochs']} |"
                         + (f" {_bits(dense['bits_per_char'])} |" if bits else ""))
    return "\n".join(lines) + "\n"


def _budget(budget):
    """A round's budget as `target -> achieved kind` (tickets.budgets), or `-`."""
    if not budget:
        return "-"
    return f"{budget['target']:.3f} -> {budget['achieved']:.3f} {budget['kind']}"


def runs_table(runs):
    """Markdown: one row per round of every run (with a budget column when a run has one)."""
    rows = table_rows(runs)
    budgets = any(row["budget"] for row in rows)
    bits = any(row["ticket_bits_per_char"] is not None for row in rows)
    lines = ["| run | method | round | remaining (%) | ticket accuracy | search accuracy | "
             "search epochs |" + (" budget: target -> deployed |" if budgets else "")
             + (" ticket bits/char |" if bits else ""),
             "|---|---|---|---|---|---|---|" + ("---|" if budgets else "")
             + ("---|" if bits else "")]
    for row in rows:
        lines.append(f"| {row['run']} | {row['method']} | {row['round']} | "
                     f"{row['remaining_percent']:.2f} | {_percent(row['ticket_accuracy'])} | "
                     f"{_percent(row['search_accuracy'])} | {row['epochs']} |"
                     + (f" {_budget(row['budget'])} |" if budgets else "")
                     + (f" {_number(row['ticket_bits_per_char'])} |" if bits else ""))
    for label, results in runs:
        dense = results.get("dense")
        if dense:
            lines.append(f"| {label} | dense | - | 100.00 | {_percent(dense['test_accuracy'])} "
                         f"| - | {dense['epochs']} |" + (" - |" if budgets else "")
                         + (f" {_number(dense.get('test_bits_per_char'))} |" if bits else ""))
    return "\n".join(lines) + "\n"


def markdown_table(runs):
    """`results.md`: the settings (mean ± sample standard deviation over seeds), then the runs."""
    return ("## Settings (mean ± sample standard deviation over seeds)\n\n"
            + settings_table(replicates.group_runs(runs)) + "\n## Runs\n\n" + runs_table(runs))
