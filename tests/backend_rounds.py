"""Two CS rounds on fixed data, run under whichever Keras backend `KERAS_BACKEND` names.

    KERAS_BACKEND=jax python3 tests/backend_rounds.py OUT.npz [--initial=INIT.npz]

Writes the mask logits `s` and the tickets of both rounds to OUT.npz. Without
`--initial` it also writes its initial weights (w_0, s0) there, so a second run on
another backend can start from the same ones (tests/test_backends.py).
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_lottery import callbacks, layers  # noqa: E402
from keras_lottery.search import model_setup  # noqa: E402
from keras_lottery.search.config import SearchConfig  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--initial", default=None)
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    generator = np.random.default_rng(0)
    x = generator.normal(size=(256, 20)).astype("float32")
    y = (x[:, :4].sum(axis=1) > 0).astype("int32") + 2 * (x[:, 4] > 0).astype("int32")
    mask = {"mask_init": 0.05, "mask_penalty": 1e-3}  # s0 and lambda
    model = keras.Sequential([
        keras.Input((20,)),
        layers.CSDense(32, activation="relu", **mask),
        layers.CSDense(4, **mask),
    ])
    if args.initial:
        with np.load(args.initial) as initial:
            count = sum(1 for key in initial.files if key[0] == "w" and key[1:].isdigit())
            model.set_weights([initial[f"w{i}"] for i in range(count)])
    initial_weights = model.get_weights()
    # the search's optimizer: FusedSGD, Nesterov, weight decay through the momentum
    config = SearchConfig(optimizer="sgd", learning_rate=0.05, momentum=0.9, nesterov=True,
                          weight_decay=1e-3)
    model.compile(optimizer=model_setup.make_optimizer(config, 8),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rounds = callbacks.RoundManager(ticket_epoch=0)
    results = {}
    for round_index in (1, 2):
        model.fit(x, y, batch_size=32, epochs=3, shuffle=False, verbose=0,
                  callbacks=[callbacks.TemperatureCallback(final_temperature=50), rounds])
        for name, kept in rounds.tickets[-1].items():
            results[f"ticket{round_index}/{name}"] = np.asarray(kept, dtype="float32")
        for key, layer in layers.masked_layers_by_key(model).items():
            results[f"s{round_index}/{key}"] = keras.ops.convert_to_numpy(layer.mask_logits)
    if not args.initial:
        results.update({f"w{i}": w for i, w in enumerate(initial_weights)})
    results["backend"] = np.array(keras.backend.backend())
    np.savez(args.out, **results)


if __name__ == "__main__":
    main()
