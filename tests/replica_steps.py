"""Trains the same steps on one device and on 2 mirrored logical CPUs; prints both as JSON.

Used by test_replica_steps.py in a fresh process (logical devices must be set
before TensorFlow initialises). Argument: a JSON list of runs, each an object with
    method        cs, iss or imp
    epochs        epochs of `steps` steps each (one `fit`, one round)
    steps         training steps per epoch (global batch 60)
    steps_per_execution, mixed_precision, target_remaining, mask_granularity, model,
    penalty_cost, target_parameters  as in SearchConfig (a budget: `Budget` steering every
                  2 steps for CS, `RoundManager(budget=...)` for IMP)
    batch_norm    put a synchronized BatchNormalization (a cross-replica merge
                  inside the forward pass) in front of the masked layers

Both runs use the search's own model, optimizer, method and callbacks
(`TemperatureCallback`, `TargetRemaining`, `RoundManager`), so the round-end
step (CS reset, ISS removal, IMP pruning) is compared too. The run
`{"check": "keras_multi_step"}` instead reports whether plain Keras can run
`steps_per_execution=2` under MirroredStrategy (`keras_lottery.compat`).
"""

import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tensorflow as tf  # noqa: E402

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()])

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lottery import callbacks as cb  # noqa: E402
from keras_lottery import (  # noqa: E402
    compat,
    methods,  # noqa: E402
    )
from keras_lottery.layers import masked_layers  # noqa: E402
from keras_lottery.search import model_setup  # noqa: E402
from keras_lottery.search.config import SearchConfig, budget_of  # noqa: E402

BATCH = 60


class _Penalties(keras.callbacks.Callback):
    """Records the masked layers' penalty `lambda * ||m||_1` after every step."""

    def __init__(self):
        super().__init__()
        self.values = []

    def on_train_batch_end(self, batch, logs=None):
        self.values.append(sum(l.mask_penalty_value() for l in masked_layers(self.model)))


#: The token ids of the transformer case: 12 per example, below VOCABULARY.
TOKENS, VOCABULARY = (12,), 40


def _model(config, batch_norm):
    if config.model == "transformer_tiny":  # attention's projections masked in place
        return model_setup.build_model(config, TOKENS, 10, vocabulary_size=VOCABULARY)
    model = model_setup.build_model(config, (28, 28, 1), 10)
    if batch_norm:  # a cross-replica merge in the middle of every forward pass
        model = keras.Sequential([keras.Input((28, 28, 1)),
                                  keras.layers.BatchNormalization(synchronized=True), model])
    return model


def _named(variables, when):
    # By position: seed generators and optimizer slots are named after the model,
    # whose name differs between the two builds.
    def label(v):
        if when == "optimizer" and v.name not in ("iteration", "step_counter", "dynamic_scale"):
            return "slot"
        return v.name

    return {f"{i}:{label(v)}@{when}": v.numpy() for i, v in enumerate(variables)}


def train(strategy, spec):
    method = spec["method"]
    config = SearchConfig(
        method=method, model=spec.get("model", "lenet300_100"), batch_size=BATCH, optimizer="sgd",
        learning_rate=0.05, momentum=0.9, weight_decay=1e-4,
        mask_init=1.0 if method == "iss" else 0.002, mask_penalty=1e-5,
        mask_optimizer="sgd", mask_learning_rate=5.0 if method == "iss" else 1.0,
        final_temperature=50.0, prune_scope="global", prune_fraction=0.3,
        target_remaining=spec.get("target_remaining", 0.0), target_start=0.0,
        steps_per_execution=spec.get("steps_per_execution", 1),
        mixed_precision=spec.get("mixed_precision", "none"), rounds=1, epochs=spec["epochs"],
        mask_granularity=spec.get("mask_granularity", "weight"),
        penalty_cost=spec.get("penalty_cost", "weights"),
        target_parameters=spec.get("target_parameters", 0.0))
    steps = spec["steps"]
    rng = np.random.default_rng(0)
    if config.model == "transformer_tiny":
        x = rng.integers(1, VOCABULARY, (BATCH * steps, *TOKENS)).astype(np.int32)
    else:
        x = rng.random((BATCH * steps, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, BATCH * steps)
    previous_policy = keras.mixed_precision.global_policy()
    if config.mixed_precision != "none":
        keras.mixed_precision.set_global_policy(config.mixed_precision)
    try:
        keras.utils.set_random_seed(0)
        with strategy.scope():
            model = _model(config, spec.get("batch_norm", False))
            model_setup.compile_model(model, config, steps, compat.steps_per_execution_for(
                strategy, config.steps_per_execution))
        callbacks = [cb.TemperatureCallback(config.final_temperature)] if method == "cs" else []
        if config.target_remaining:
            callbacks.append(cb.TargetRemaining(config.target_remaining, start=0.0,
                                                update_every=2))
        budget = budget_of(config)
        method_ = methods.from_config(config)
        if budget is not None and not method_.ticket_after_round_end:
            callbacks.append(cb.Budget(budget.fraction, budget.kind, update_every=2, rate=0.2,
                                       start=0.0))
        penalties = _Penalties()
        rounds = cb.RoundManager(method=method_, budget=budget if (
            budget is not None and method_.ticket_after_round_end) else None)
        before_reset = {}

        class _Capture(keras.callbacks.Callback):
            def on_train_end(self, logs=None):  # before RoundManager's round-end step
                before_reset.update(_named(model.variables, "end"))
                before_reset.update(_named(model.optimizer.variables, "optimizer"))

        dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(BATCH)
        history = model.fit(dataset, epochs=config.epochs, verbose=0, shuffle=False,
                            callbacks=callbacks + [penalties, _Capture(), rounds])
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    arrays = dict(before_reset)
    arrays.update(_named(model.variables, "reset"))
    arrays.update({f"ticket/{name}": mask for name, mask in rounds.tickets[-1].items()})
    return {"arrays": arrays, "loss": history.history["loss"], "penalty": penalties.values,
            "replicas": strategy.num_replicas_in_sync}


def compare(one, two):
    """Largest difference per variable, relative to the variable's own scale."""
    differences = {}
    for name, a in one["arrays"].items():
        b = two["arrays"][name]
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        finite = np.isfinite(a) & (np.abs(a) < 1e8)  # removed logits are -1e9
        assert np.array_equal(finite, np.isfinite(b) & (np.abs(b) < 1e8)), name
        scale = max(float(np.max(np.abs(a[finite]), initial=0.0)), 1e-6)
        differences[name] = float(np.max(np.abs(a - b)[finite], initial=0.0)) / scale
    return differences


def keras_multi_step_works():
    """Whether a plain Keras model trains with steps_per_execution=2 on 2 replicas."""
    with MIRRORED.scope():
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        model.compile(optimizer="sgd", loss="mse", steps_per_execution=2)
    try:
        model.fit(np.ones((8, 4), "float32"), np.ones((8, 2), "float32"), batch_size=2,
                  verbose=0)
        return True
    except tf.errors.InvalidArgumentError:
        return False


# One strategy of each kind per process: a second MirroredStrategy would reuse
# the first one's collective keys for tensors of other shapes.
SINGLE = tf.distribute.OneDeviceStrategy("/cpu:0")
MIRRORED = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


def compare_run(spec):
    if spec.get("check") == "keras_multi_step":
        return {"works": keras_multi_step_works()}
    one = train(SINGLE, spec)
    two = train(MIRRORED, spec)

    def remaining(run):
        masks = [a.ravel() for k, a in run["arrays"].items() if k.startswith("ticket/")]
        return float(np.mean(np.concatenate(masks)))

    return {"differences": compare(one, two), "loss": [one["loss"], two["loss"]],
            "penalty": [one["penalty"], two["penalty"]],
            "replicas": [one["replicas"], two["replicas"]],
            "remaining": [remaining(one), remaining(two)]}


def main():
    print("RESULTS " + json.dumps([compare_run(spec) for spec in json.loads(sys.argv[1])]))


if __name__ == "__main__":
    main()
