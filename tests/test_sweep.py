"""A small keras-tuner sweep of ticket searches on a data set the test makes."""

import json
import os

import pytest

from keras_lottery import search, sweep
from keras_lottery.callbacks import TrainingDiverged
from keras_lottery.config import SearchConfig


def _base(idx_dir):
    return SearchConfig(data_dir=idx_dir, validation_examples=200, rounds=1, epochs=1,
                        batch_size=100, ticket_epoch=0, ticket_epochs=1, dense_baseline=False,
                        verbose=0)


def test_sweep_records_trials_failures_and_the_pareto_front(idx_dir, tmp_path, monkeypatch):
    original = search.run
    calls = []

    def run_and_fail_second(config):
        calls.append(config)
        if len(calls) == 2:
            raise TrainingDiverged("round 1 diverged (injected by the test)")
        return original(config)

    monkeypatch.setattr(search, "run", run_and_fail_second)
    summary = sweep.run_sweep(_base(idx_dir), str(tmp_path / "sweep"), max_trials=3, seed=1)
    statuses = sorted(t["status"] for t in summary["trials"])
    assert statuses == ["COMPLETED", "COMPLETED", "FAILED"]
    # Each trial ran a whole search with its own s0, lambda and beta_T.
    assert len({(c.mask_init, c.mask_penalty) for c in calls}) == 3
    for config in calls:
        assert -0.05 <= config.mask_init <= 0.05 and 1e-8 <= config.mask_penalty <= 1e-5
    # The front holds only points that no sparser point beats.
    front = summary["pareto_front"]
    assert front and all(p in summary["points"] for p in front)
    for point in summary["points"]:
        assert not any(q["remaining"] < point["remaining"] and
                       q["ticket_accuracy"] >= point["ticket_accuracy"] for q in front
                       if point in front)
    saved = json.load(open(tmp_path / "sweep" / "sweep.json"))
    assert saved["pareto_front"] == json.loads(json.dumps(front))
    assert os.listdir(tmp_path / "sweep" / "hparams")
    # Running the sweep again continues it: no finished trial is redone.
    calls.clear()
    sweep.run_sweep(_base(idx_dir), str(tmp_path / "sweep"), max_trials=3, seed=1)
    assert calls == []


def test_sweep_rejects_unknown_tuner(idx_dir, tmp_path):
    from keras_lottery.config import ConfigError

    with pytest.raises(ConfigError, match="--tuner='grid'"):
        sweep.run_sweep(_base(idx_dir), str(tmp_path / "s"), tuner="grid")
