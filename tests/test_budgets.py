"""Tickets to a budget: the deployed cost is counted as the deployment record counts it, cuts
and pruning land within [0.9 F, F], the multiplier moves the right way, bad budgets are one
line."""

import os

import keras
import numpy as np
import pytest
from conftest import tiny_config
from test_search_app import _scalars

import keras_lottery as kl
from keras_lottery import methods, search
from keras_lottery.search import ConfigError, SearchConfig
from keras_lottery.tickets import budgets
from keras_lottery.tickets.convert import strip
from keras_lottery.tickets.deployment import _all_kept, _counts


def _conv_net():
    """Units fine enough that none costs a tenth of the budgets below (the landing's bound)."""
    inputs = keras.Input((12, 12, 3))
    x = keras.layers.Conv2D(32, 3, activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.Conv2D(48, 3, padding="same", activation="relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(24, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def _lenet():
    return keras.Sequential([keras.Input((32,)), keras.layers.Dense(40, activation="relu"),
                             keras.layers.Dense(20, activation="relu"), keras.layers.Dense(4)])


def _encoder():
    """Two pre-norm blocks of 16 heads of 2 and 64 feed-forward units on 8 tokens of width 32:
    a head costs 1.5% of the network, a unit 0.4%."""
    inputs = keras.Input((8, 32))
    x = inputs
    for _ in range(2):
        normed = keras.layers.LayerNormalization()(x)
        x = keras.layers.Add()([x, keras.layers.MultiHeadAttention(16, 2)(normed, normed)])
        hidden = keras.layers.Dense(64, activation="relu")(keras.layers.LayerNormalization()(x))
        x = keras.layers.Add()([x, keras.layers.Dense(32)(hidden)])
    x = keras.layers.GlobalAveragePooling1D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x))


def _masked(build, granularity, seed=0, **arguments):
    keras.utils.set_random_seed(seed)
    model = kl.sparsify(build(), mask_granularity=granularity, **arguments)
    generator = np.random.default_rng(seed)
    for layer in kl.layers.masked_layers(model):
        layer.mask_logits.assign(generator.normal(size=layer.mask_logits.shape).astype("float32"))
    for variable in model.weights:  # nonzero biases and statistics, as after training
        if variable.path.endswith(("bias", "beta", "moving_mean")):
            variable.assign(generator.uniform(0.1, 0.2, variable.shape).astype("float32"))
    return model


def _record_fraction(model, kind, granularity):
    """The deployment record's count of the ticket, over the dense network's."""
    stripped = strip(model, warn_undecided=False)
    deployed = kl.shrink(stripped) if granularity == "unit" else stripped
    counts = _counts(strip(_all_kept(model), warn_undecided=False), deployed)
    key = "macs_per_example" if kind == "macs" else "parameters"
    name = "deployed" if granularity == "unit" else "deployed_nonzero"
    return counts[key][name] / counts[key]["dense"]


@pytest.mark.parametrize("granularity", ["unit", "weight"])
@pytest.mark.parametrize("kind", ["macs", "parameters"])
def test_deployed_cost_counts_what_the_deployment_record_counts(granularity, kind):
    model = _masked(_conv_net, granularity)
    cost = kl.DeployedCost(model, kind)
    assert 0 < cost.fraction() < 1
    assert cost.fraction() == pytest.approx(_record_fraction(model, kind, granularity), rel=1e-9)


@pytest.mark.parametrize("build, granularity", [
    (_lenet, "unit"), (_lenet, "block"), (_lenet, "weight"), (_conv_net, "unit"),
    (_encoder, "unit")])
@pytest.mark.parametrize("kind, target", [("macs", 0.3), ("parameters", 0.12)])
def test_a_learned_mask_is_cut_into_the_budget_keeping_its_ranking(build, granularity, kind,
                                                                   target):
    model = _masked(build, granularity)
    cost = kl.DeployedCost(model, kind)
    before = budgets.cuts.flat_logits(cost.layers)
    achieved = budgets.cut_learned(cost, target)
    assert 0.9 * target <= achieved <= target
    assert achieved == pytest.approx(_record_fraction(model, kind, granularity), rel=1e-9)
    after = budgets.cuts.flat_logits(cost.layers)
    moved = np.concatenate([r.ravel() for r in cost.removable])
    # One shift: the kept logits keep their order, and so do the dropped ones (float32 may
    # make ties; a group that did not fit may drop below cheaper ones ranked after it).
    for side in (after > 0, after < 0):
        chosen = moved & side
        assert np.all(np.diff(after[chosen][np.argsort(before[chosen], kind="stable")]) >= 0)
    for layer in cost.layers:  # the floor: no layer emptied
        assert layer.ticket_mask().any()


@pytest.mark.parametrize("method", [methods.IterativeMagnitudePruning(scope="layerwise"),
                                    methods.IterativeMagnitudePruning(scope="global"),
                                    methods.RandomPruning(seed=3)])
@pytest.mark.parametrize("build, granularity", [(_lenet, "unit"), (_lenet, "block"),
                                                (_conv_net, "unit"), (_encoder, "unit")])
def test_pruning_prunes_to_the_budget_round_by_round(method, build, granularity):
    keras.utils.set_random_seed(0)
    model = kl.sparsify(build(), method=method.name, mask_granularity=granularity)
    target = budgets.BudgetTarget("macs", 0.3, rounds=2)
    cost = kl.DeployedCost(model, "macs")
    for round_index in (1, 2):
        wanted = target.round_target(round_index)
        achieved = budgets.prune_to_budget(cost, wanted, method)
        assert 0.9 * wanted <= achieved <= wanted
        assert cost.fraction() == pytest.approx(achieved)
    if method.scope == "layerwise" and granularity == "unit":  # the same share of each layer
        shares = [layer.remaining_fraction() for layer in cost.layers[:-1]]  # of its groups
        assert max(shares) - min(shares) < 0.15


def test_min_units_keeps_the_best_units_of_every_layer_whatever_they_cost():
    model = _masked(_lenet, "unit")
    cost = kl.DeployedCost(model, "parameters")
    for layer in cost.layers[:-1]:  # no hidden unit wanted: the floor alone keeps units
        layer.mask_logits.assign(np.full(layer.mask_logits.shape, -5.0, "float32"))
    least = cost.fraction(budgets.minimal_ticket(cost, 3))
    with pytest.raises(budgets.BudgetError, match="below what the ticket must keep"):
        budgets.cut_learned(cost, 0.99 * least, min_units=3)
    assert budgets.cut_learned(cost, least, min_units=3) == pytest.approx(least)
    for layer in cost.layers[:-1]:
        assert int(layer.ticket_mask().any(axis=0).sum()) == 3


def _train(model, budget, epochs=2):
    x = np.random.default_rng(0).normal(size=(256, 32)).astype("float32")
    y = (x[:, :4].argmax(axis=1)).astype("int32")
    model.compile(optimizer=keras.optimizers.SGD(0.1),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, batch_size=32, epochs=epochs, verbose=0,
              callbacks=[kl.callbacks.TemperatureCallback(100.0), budget])


@pytest.mark.parametrize("mask_init, target, direction", [(2.0, 0.1, 1), (-2.0, 0.9, -1)])
def test_the_multiplier_moves_the_right_way_and_the_ticket_lands(mask_init, target, direction):
    model = kl.sparsify(_lenet(), mask_granularity="unit", mask_init=mask_init,
                        mask_penalty=1e-4)
    budget = kl.Budget(target, "parameters", update_every=4, rate=0.2, start=0.0)
    _train(model, budget)
    steps = [mu for _, _, mu in budget.history]
    assert steps and np.sign(np.log(steps[0])) == direction  # over: presses; under: eases
    assert 0.9 * target <= budget.achieved <= target
    assert kl.DeployedCost(model, "parameters").fraction() == pytest.approx(budget.achieved)


def test_a_short_round_updates_the_multiplier_at_least_min_updates_times():
    model = kl.sparsify(_lenet(), mask_granularity="unit", mask_init=2.0, mask_penalty=1e-4)
    budget = kl.Budget(0.1, "parameters", update_every=20, rate=0.05, start=0.5, min_updates=8)
    _train(model, budget)  # 16 steps: 8 in the steering window, every 20 would give none
    assert len(budget.history) == 8
    assert [step for step, _, _ in budget.history] == list(range(8, 16))
    long_enough = kl.Budget(0.1, "parameters", update_every=2, start=0.5, min_updates=2)
    _train(kl.sparsify(_lenet(), mask_granularity="unit", mask_init=2.0, mask_penalty=1e-4),
           long_enough)
    assert len(long_enough.history) == 4  # every update_every steps, as asked


def test_budget_refuses_what_it_cannot_steer():
    imp = methods.IterativeMagnitudePruning()
    model = kl.sparsify(_lenet(), method=imp.name, mask_granularity="unit")
    with pytest.raises(ValueError, match="learned mask"):
        _train(model, kl.Budget(0.5, "parameters"), epochs=1)
    with pytest.raises(ValueError, match="Budget callback"):
        kl.RoundManager(budget=kl.BudgetTarget("macs", 0.5))
    with pytest.raises(ValueError, match=r"in \(0, 1\], got 1.5"):
        kl.BudgetTarget("macs", 1.5)


@pytest.mark.tensorflow_only  # (the search app)
def test_searches_land_on_the_budget_every_round(idx_dir, tmp_path):
    for method, extra in (("cs", {"mask_granularity": "unit", "unit_multiple": 4}),
                          ("imp", {"mask_granularity": "unit", "ticket_epoch": 0})):
        results = search.run(tiny_config(idx_dir, tmp_path / method, method=method, rounds=2,
                                         target_macs=0.2, **extra))
        for record, wanted in zip(results["rounds"], (0.2 ** 0.5, 0.2)):
            assert record["budget"]["target"] == pytest.approx(wanted)
            assert 0.9 * wanted <= record["budget"]["achieved"] <= wanted
            with np.load(tmp_path / method / "tickets" / f"round_{record['round']}.npz") as masks:
                units = {name: int(np.count_nonzero(mask.reshape(-1, mask.shape[-1]).any(0)))
                         for name, mask in masks.items()}
            hidden = [count for name, count in units.items() if "output" not in name]
            assert len(hidden) == 2 and all(count % extra.get("unit_multiple", 1) == 0
                                            for count in hidden), units
        summary = _scalars(tmp_path / method / "tensorboard" / "summary")
        assert [v for _, v in summary["Results/budget_achieved"]] == pytest.approx(
            [r["budget"]["achieved"] for r in results["rounds"]])
    search_run = _scalars(tmp_path / "cs" / "tensorboard" / "search")
    assert len(search_run["budget/multiplier"]) == 2 and "budget/cost" in search_run


@pytest.mark.parametrize("settings, words", [
    ({"target_macs": 1.5}, "--target_macs=1.5 is invalid: must be a fraction in (0, 1]"),
    ({"target_macs": 0.5, "target_parameters": 0.5}, "give one budget"),
    ({"target_macs": 0.5, "target_remaining": 0.1}, "--target_remaining already sets"),
    ({"target_macs": 0.5, "unit_multiple": 0}, "--unit_multiple=0 is invalid"),
])
def test_bad_budget_settings_are_one_line(settings, words):
    with pytest.raises(ConfigError) as error:
        SearchConfig(**settings).validate()
    assert words in str(error.value) and "\n" not in str(error.value)


def test_a_mac_budget_on_a_model_of_variable_size_is_one_line():
    inputs = keras.Input((None, None, 1))
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = kl.sparsify(keras.Model(inputs, keras.layers.Dense(10)(x)))
    with pytest.raises(ValueError) as error:
        kl.DeployedCost(model, "macs")
    assert "cannot count the multiply-accumulates of layer" in str(error.value)
    assert "\n" not in str(error.value)
    # A fresh CS ticket keeps no weight: the biases (4 + 10) of the 90 parameters remain.
    assert kl.DeployedCost(model, "parameters").fraction() == pytest.approx(14 / 90)


@pytest.mark.tensorflow_only  # (the search app)
def test_a_budget_the_ticket_cannot_reach_is_one_line_and_writes_nothing(idx_dir, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(ConfigError) as error:
        search.run(tiny_config(idx_dir, out, target_parameters=1e-4, mask_granularity="unit",
                               min_units=5))
    assert "--target_parameters=0.0001 is invalid: the ticket must keep" in str(error.value)
    assert "\n" not in str(error.value)
    assert not os.path.exists(out / "results.json")


def test_min_fraction_keeps_a_share_of_every_unit_layer_and_is_checked():
    model = kl.sparsify(_lenet(), mask_granularity="unit")
    cost = budgets.DeployedCost(model, "parameters")
    layers = cost.layers
    first = layers[0]  # 40 units, ranked last by s: a plain cut fills the others first
    for layer in layers:
        values = np.linspace(1.0, 2.0, int(np.prod(layer.mask_logits.shape)))
        layer.mask_logits.assign(values.reshape(layer.mask_logits.shape).astype("float32")
                                 - (3.0 if layer is first else 0.0))
    logits = [layer.mask_logits.numpy().copy() for layer in layers]
    budgets.cut_learned(cost, 0.2, min_units=1)
    assert np.count_nonzero(first.mask_logits.numpy() > 0) == 6
    for layer, values in zip(layers, logits):
        layer.mask_logits.assign(values)
    achieved = budgets.cut_learned(cost, 0.2, min_units=1, min_fraction=0.25)
    assert 0.18 <= achieved <= 0.2
    assert np.count_nonzero(first.mask_logits.numpy() > 0) == 10  # ceil(0.25 * 40)
    assert budgets.unit_floors(layers, 1, 0.25) == [10, 5, 1]
    with pytest.raises(budgets.BudgetError, match="min_unit_fraction=0.5"):
        budgets.cut_learned(cost, 0.2, min_units=1, min_fraction=0.5)
    with pytest.raises(ValueError, match="min_fraction must be a fraction in"):
        budgets.BudgetTarget("macs", 0.25, min_fraction=1.0)


def _wide_conv_net():
    """Wide enough that a run of 4 units costs less than a tenth of the budgets below."""
    inputs = keras.Input((10, 10, 3))
    x = keras.layers.Conv2D(40, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Conv2D(96, 3, padding="same", activation="relu")(x)
    x = keras.layers.Conv2D(80, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    return keras.Model(inputs, keras.layers.Dense(5)(x))


def _unit_counts(cost):
    return {layer.name: (int(np.count_nonzero(layer.ticket_mask().reshape(
        -1, layer.mask_logits.shape[-1]).any(axis=0))), int(layer.mask_logits.shape[-1]))
        for layer in cost.layers}


@pytest.mark.parametrize("method", [None, methods.IterativeMagnitudePruning(scope="layerwise"),
                                    methods.RandomPruning(seed=3)])
def test_unit_multiple_keeps_a_multiple_of_it_in_every_unit_layer(method):
    keras.utils.set_random_seed(0)
    if method is None:  # a learned mask: its cut keeps each layer's best units by s
        model = _masked(_wide_conv_net, "unit")
    else:
        model = kl.sparsify(_wide_conv_net(), method=method.name, mask_granularity="unit")
    cost = kl.DeployedCost(model, "macs")
    logits = {layer.name: layer.mask_logits.numpy().ravel().copy() for layer in cost.layers}
    for target in (0.5, 0.3):
        achieved = (budgets.cut_learned(cost, target, unit_multiple=4) if method is None
                    else budgets.prune_to_budget(cost, target, method, unit_multiple=4))
        assert 0.9 * target <= achieved <= target
        assert achieved == pytest.approx(_record_fraction(model, "macs", "unit"), rel=1e-9)
        counts = _unit_counts(cost)
        classes = cost.layers[-1].name
        assert counts.pop(classes) == (5, 5)  # the classes stay
        assert any(kept < width for kept, width in counts.values())
        for kept_units, _ in counts.values():
            assert kept_units % 4 == 0 and kept_units > 0, counts
    if method is None:
        for layer in cost.layers[:-1]:  # the kept units are the layer's best by s
            mask = layer.ticket_mask().reshape(-1, layer.mask_logits.shape[-1]).any(axis=0)
            assert logits[layer.name][mask].min() >= logits[layer.name][~mask].max()
    with pytest.raises(ValueError, match="unit_multiple must be an integer >= 1, got 0"):
        budgets.BudgetTarget("macs", 0.25, unit_multiple=0)
