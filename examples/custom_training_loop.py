"""Example 3: the same layers in a custom `tf.GradientTape` training loop.

The temperature schedule and the round-end step are plain objects, so a loop
without `fit` uses them directly: `set_temperature(model, schedule(t, T))` every
step and `callbacks.end_round(model, method, ...)` after each round: the same
function `RoundManager` and the lottery runner call, so the ticket is read at
the right moment for every method (before CS's reset, after IMP's pruning).

    python3 examples/custom_training_loop.py [--data_dir=DIR]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_lottery import callbacks, data, methods, tickets  # noqa: E402
from keras_lottery.layers import CSDense  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--train_examples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    splits = data.load("fashion_mnist", args.data_dir, validation_examples=1000,
                       train_examples=args.train_examples)
    train, _, test = data.pipelines(splits, batch_size=64)
    model = keras.Sequential([
        keras.Input(splits.input_shape),
        keras.layers.Flatten(),
        CSDense(300, activation="relu", mask_init=-0.01, mask_penalty=1e-6),
        CSDense(100, activation="relu", mask_init=-0.01, mask_penalty=1e-6),
        CSDense(splits.num_classes, mask_init=-0.01, mask_penalty=1e-6),
    ])
    optimizer = keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    schedule = callbacks.TemperatureSchedule(final_temperature=200.0)   # beta_0 = 1 -> beta_T
    method = methods.ContinuousSparsification()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            task_loss = loss_fn(y, logits)
            loss = task_loss + tf.add_n(model.losses)  # + lambda * ||sigmoid(beta s)||_1
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return task_loss

    steps_per_round = args.epochs * int(train.cardinality())
    for round_index in (1, 2):
        step = 0
        for _epoch in range(args.epochs):
            progress = keras.utils.Progbar(int(train.cardinality()), stateful_metrics=["beta"])
            for x, y in train:
                # beta is a variable: the compiled step sees each new value.
                callbacks.set_temperature(model, schedule(step, steps_per_round))
                task_loss = train_step(x, y)
                step += 1
                progress.add(1, [("task_loss", float(task_loss)),
                                 ("beta", schedule(step, steps_per_round))])
        callbacks.set_temperature(model, schedule(steps_per_round, steps_per_round))  # beta_T
        accuracy = keras.metrics.SparseCategoricalAccuracy()
        for x, y in test:
            accuracy.update_state(y, model(x, training=False))
        # The ticket b(s_T), then s <- min(beta_T s_T, s0), beta <- beta_0, fresh momenta.
        masks = callbacks.end_round(model, method, optimizer=optimizer)
        print(f"round {round_index}: ticket keeps {tickets.remaining_fraction(masks):.1%}, "
              f"searched network test accuracy {float(accuracy.result()):.4f}")


if __name__ == "__main__":
    main()
