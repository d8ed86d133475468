"""Example 4: find a ticket of a model you trained yourself (`--init_from`).

Trains a plain Keras model on Fashion-MNIST, saves it, and runs a CS ticket search
that starts from it: the masks are scaled by 1/sigmoid(s0), so at the first step the
masked network computes exactly what the trained model does, and CS then removes the
weights it does not need. The same from the command line:

    python3 -m apps.search --flagfile=apps/flags/quickstart.cfg --init_from=trained.keras

    python3 examples/ticket_of_trained_model.py [--data_dir=DIR] [--epochs=3]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from keras_lottery import SearchConfig, data, search  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--train_examples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", default="runs/ticket_of_trained_model")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    splits = data.load("fashion_mnist", args.data_dir, train_examples=args.train_examples)
    trained = keras.Sequential([
        keras.Input(splits.input_shape), keras.layers.Flatten(),
        keras.layers.Dense(300, activation="relu"), keras.layers.Dense(100, activation="relu"),
        keras.layers.Dense(splits.num_classes)])  # logits: no softmax
    trained.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=["accuracy"])
    trained.fit(splits.x_train, splits.y_train, batch_size=128, epochs=args.epochs, verbose=2)
    _, dense_accuracy = trained.evaluate(splits.x_test, splits.y_test, verbose=0)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "trained.keras")
    trained.save(path)

    # Fine-tuning a trained model: a tenth of the from-scratch learning rate. Tickets are
    # retrained from the trained weights (ticket_epoch=0) and, like the search, compute with
    # c * w * b(s), c = 1/sigmoid(s0) = 2 at s0 = 0 (the official CS code's ticket scaling).
    config = SearchConfig(
        init_from=path, data_dir=args.data_dir or "", train_examples=args.train_examples,
        rounds=2, epochs=args.epochs, learning_rate=0.01, mask_init=0.0, mask_penalty=1e-6,
        ticket_epoch=0,
        ticket_epochs=args.epochs, dense_baseline=False, output_dir=os.path.join(args.out, "run"),
        verbose=2, overwrite=True)
    results = search.run(config)
    print(f"trained model: test accuracy {dense_accuracy:.4f}")
    for record in results["rounds"]:
        print(f"round {record['round']}: the ticket keeps {record['remaining']:.2%} of the "
              f"weights; searched network {record['search_accuracy']:.4f}, ticket retrained "
              f"from the trained weights {record['ticket_accuracy']:.4f}")


if __name__ == "__main__":
    main()
