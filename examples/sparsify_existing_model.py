"""Example 2: take an existing Keras model, sparsify it, search, retrain, strip and export.

    python3 examples/sparsify_existing_model.py [--data_dir=DIR] [--out=ticket_export]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

import keras_lottery  # noqa: E402
from keras_lottery import callbacks, data, tickets  # noqa: E402


def plain_model(input_shape, num_classes):
    """Any Sequential or functional Keras model; nothing here knows about masks."""
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv")(inputs)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", name="hidden")(x)
    outputs = keras.layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--train_examples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="ticket_export")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    splits = data.load("fashion_mnist", args.data_dir, validation_examples=1000,
                       train_examples=args.train_examples)
    original = plain_model(splits.input_shape, splits.num_classes)

    # Every Dense/Conv2D but the output layer gets mask logits s (s0 = -0.01, lambda = 1e-6).
    model = keras_lottery.sparsify(original, method="cs", mask_init=-0.01, mask_penalty=1e-6,
                                   exclude=["logits"])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    rounds = callbacks.RoundManager(ticket_epoch=0)
    for _ in range(2):
        model.fit(splits.x_train, splits.y_train, batch_size=64, epochs=args.epochs, verbose=2,
                  callbacks=[callbacks.TemperatureCallback(200), rounds])

    ticket = tickets.build_ticket(model, rounds.tickets[-1], rounds.ticket_weights)
    ticket.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                   loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                   metrics=["accuracy"])
    ticket.fit(splits.x_train, splits.y_train, batch_size=64, epochs=args.epochs, verbose=2)

    # A plain Keras model with kernels w * b(s): no custom layers needed to load it.
    stripped = keras_lottery.strip(ticket)
    stripped.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                     metrics=["accuracy"])
    accuracy = stripped.evaluate(splits.x_test, splits.y_test, verbose=0,
                                 return_dict=True)["accuracy"]
    report = tickets.export(ticket, args.out)
    print(f"ticket keeps {report['remaining']:.1%} of the maskable weights, "
          f"{report['ticket_bytes'] / report['dense_bytes']:.1%} of the dense bytes, "
          f"{report['nonzero_macs_per_example'] / report['dense_macs_per_example']:.1%} of the MACs; "
          f"stripped test accuracy {accuracy:.4f}; exported to {args.out}/")


if __name__ == "__main__":
    main()
