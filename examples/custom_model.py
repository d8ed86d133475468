"""Example 1: CSConv2D / CSDense in a hand-written model, trained with `fit`.

Two CS rounds on a Fashion-MNIST subset, then the ticket is retrained from w_0
with its mask fixed.

    python3 examples/custom_model.py [--data_dir=DIR] [--train_examples=5000]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_lottery import callbacks, data, layers, tickets  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", default=None, help="directory with Fashion-MNIST IDX files")
    parser.add_argument("--train_examples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    splits = data.load("fashion_mnist", args.data_dir, validation_examples=1000,
                       train_examples=args.train_examples)
    mask = {"mask_init": -0.01, "mask_penalty": 1e-6}  # s0 and lambda
    model = keras.Sequential([
        keras.Input(splits.input_shape),
        layers.CSConv2D(16, 3, padding="same", activation="relu", **mask),
        keras.layers.MaxPooling2D(),
        layers.CSConv2D(32, 3, padding="same", activation="relu", **mask),
        keras.layers.MaxPooling2D(),
        keras.layers.Flatten(),
        layers.CSDense(128, activation="relu", **mask),
        layers.CSDense(splits.num_classes, **mask),
    ])

    def compile_(network):
        network.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                        metrics=["accuracy"])
        return network

    compile_(model)
    rounds = callbacks.RoundManager(ticket_epoch=0)
    for round_index in (1, 2):
        model.fit(splits.x_train, splits.y_train, batch_size=64, epochs=args.epochs, verbose=2,
                  callbacks=[callbacks.TemperatureCallback(final_temperature=200), rounds])
        masks = rounds.tickets[-1]
        print(f"round {round_index}: ticket keeps {tickets.remaining_fraction(masks):.1%}")

    ticket = compile_(tickets.build_ticket(model, masks, rounds.ticket_weights))
    ticket.fit(splits.x_train, splits.y_train, batch_size=64, epochs=args.epochs, verbose=2)
    accuracy = ticket.evaluate(splits.x_test, splits.y_test, verbose=0, return_dict=True)
    print(f"ticket: {tickets.remaining_fraction(masks):.1%} of the weights, "
          f"test accuracy {accuracy['accuracy']:.4f}")


if __name__ == "__main__":
    main()
