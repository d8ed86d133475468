"""Files written before the library moved into rooms (issue 21) still load: a masked `.keras`
model and a run directory, both written by the code of commit f16d618 (tests/data/before_rooms,
made with CSConv2D, a stochastic CSDense and a fixed CSDense, and a 2-round CS search)."""

import json
import os

import keras
import numpy as np
import pytest

import keras_lottery
from keras_lottery import search, tickets

DATA = os.path.join(os.path.dirname(__file__), "data", "before_rooms")


def test_a_masked_model_saved_before_loads_with_w_s_and_beta():
    model = keras.saving.load_model(os.path.join(DATA, "masked_model.keras"))
    assert [type(layer).__name__ for layer in model.layers] == [
        "CSConv2D", "Flatten", "CSDense", "CSDense"]
    conv, _, stochastic, fixed = model.layers
    assert (conv.mask_rule, stochastic.mask_rule, fixed.mask_rule) == (
        "continuous", "stochastic", "fixed")
    assert float(conv.temperature.numpy()) == 7.5 and stochastic.mask_seed == 3
    saved = np.load(os.path.join(DATA, "masked_model_io.npz"))
    np.testing.assert_allclose(model.predict(saved["x"], verbose=0), saved["y"], rtol=1e-6,
                               atol=1e-6)


def test_a_run_directory_written_before_gives_its_tickets_back():
    run_dir = os.path.join(DATA, "run")
    with open(os.path.join(run_dir, "results.json")) as handle:
        results = json.load(handle)
    config = search.SearchConfig.from_dict(results["flags"]).validate()
    assert config.method == "cs" and config.rounds == 2
    for round_index in (1, 2):
        ticket = keras_lottery.search.load_run(run_dir, round=round_index)
        saved = tickets.load_masks(os.path.join(run_dir, "tickets", f"round_{round_index}.npz"))
        assert set(ticket.masks) == set(saved)
        for name, mask in tickets.extract_masks(ticket.model).items():
            np.testing.assert_array_equal(mask, saved[name])
    assert keras_lottery.load_run(run_dir).record["round"] == 2
    with pytest.raises(AttributeError, match="moved: use keras_lottery.load_run"):
        tickets.load_run(run_dir)
