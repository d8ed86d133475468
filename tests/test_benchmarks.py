"""The benchmarks' bookkeeping (never their timings: those are not tests)."""

import json

import pytest

from benchmarks import search_cost


def _run(directory, method, rounds, dense=None, ticket_epoch=2, ticket_epochs=10):
    directory.mkdir()
    results = {"flags": {"method": method, "ticket_epoch": ticket_epoch,
                         "ticket_epochs": ticket_epochs},
               "dense": dense,
               "rounds": [{"round": i + 1, "remaining": remaining, "ticket_accuracy": accuracy,
                           "epochs": 10 * (i + 1)} for i, (remaining, accuracy) in enumerate(rounds)]}
    (directory / "results.json").write_text(json.dumps(results))
    return str(directory)


def test_search_cost_finds_the_first_sparse_and_accurate_ticket(tmp_path):
    imp = _run(tmp_path / "imp", "imp", [(0.8, 0.88), (0.09, 0.86), (0.07, 0.879)],
               dense={"test_accuracy": 0.88})
    cs = _run(tmp_path / "cs", "cs", [(0.12, 0.89), (0.06, 0.876)])
    rows = search_cost.cost_table([imp, cs], max_remaining=0.10, tolerance=0.005)
    # IMP's round 2 is sparse enough but 2 points short; round 3 is the first that counts.
    assert [(row["method"], row["round"], row["search_epochs"]) for row in rows] == [
        ("imp", 3, 30), ("cs", 2, 20)]
    assert rows[0]["ticket_epochs"] == 12
    never = _run(tmp_path / "never", "cs", [(0.5, 0.9)])
    assert "round" not in search_cost.cost_table([never], dense=0.88)[0]
    with pytest.raises(SystemExit, match="dense baseline"):
        search_cost.cost_table([never])
