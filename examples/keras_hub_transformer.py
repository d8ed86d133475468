"""Example 5: a keras-hub transformer masked in place: search a ticket, strip it, save it.

A `BertTextClassifier` (2 layers, width 64, built from its config: no weights are downloaded)
classifies King James verses into 6 groups of books (`kjv_genres`). `sparsify(in_place=True)`
masks every Dense and EinsumDense kernel inside it (attention's query, key, value and output,
the feed-forward layers, the pooler and the logits) and the model stays a
`BertTextClassifier`. After a CS search, `strip` gives a plain keras-hub model. With
`--mask_granularity=unit` the groups are heads and feed-forward units, and `shrink` then
gives a smaller functional model (keras-hub has no class for blocks that keep different
numbers of heads; docs/guide.md, "Heads and feed-forward units").

    python3 examples/keras_hub_transformer.py [--train_examples=5000] [--epochs=2]
        [--mask_granularity=unit]
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402
import keras_hub  # noqa: E402
import numpy as np  # noqa: E402

import keras_lottery  # noqa: E402
from keras_lottery import callbacks, data, saving, tickets  # noqa: E402


def bert_inputs(token_ids):
    """keras-hub's BERT inputs for token ids (0 pads)."""
    return {"token_ids": token_ids, "padding_mask": token_ids > 0,
            "segment_ids": np.zeros_like(token_ids)}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data_dir", default=None, help="holds kjv.txt (default: bible-kjv)")
    parser.add_argument("--train_examples", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="bert_ticket")
    parser.add_argument("--mask_granularity", default="weight", choices=["weight", "unit"])
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    splits = data.load("kjv_genres", args.data_dir, train_examples=args.train_examples)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=splits.vocabulary_size, num_layers=2, num_heads=4, hidden_dim=64,
        intermediate_dim=128, max_sequence_length=splits.input_shape[0])
    model = keras_hub.models.BertTextClassifier(backbone, splits.num_classes, preprocessor=None)

    # mask_scaling: the masks start at 1 (w * sigmoid(s0) / sigmoid(s0)), the model at itself.
    keras_lottery.sparsify(model, method="cs", mask_init=-0.01, mask_penalty=1e-6,
                           mask_scaling=True, in_place=True,
                           mask_granularity=args.mask_granularity)
    print(f"{type(model).__name__}: {len(tickets.extract_masks(model))} kernels masked, e.g. "
          f"{list(tickets.extract_masks(model))[:2]}")
    model.compile(optimizer=keras_lottery.optimizers.MaskOptimizer(
                      keras.optimizers.Adam(1e-3), keras.optimizers.SGD(0.1, momentum=0.9)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    # keras-hub's fit makes a tf.data.Dataset of arrays without shuffling them: shuffle here
    # (the verses come in book order).
    order = np.random.default_rng(0).permutation(len(splits.y_train))
    model.fit(bert_inputs(splits.x_train[order]), splits.y_train[order], batch_size=64,
              epochs=args.epochs,
              validation_data=(bert_inputs(splits.x_val), splits.y_val), verbose=2,
              callbacks=[callbacks.TemperatureCallback(final_temperature=200)])

    masks = tickets.extract_masks(model)
    print(f"ticket keeps {tickets.remaining_fraction(masks):.1%} of the weights")
    os.makedirs(args.out, exist_ok=True)
    saving.save_model(model, os.path.join(args.out, "masked.keras"))  # w, s, beta: reloadable
    ticket = keras_lottery.strip(model)  # a plain BertTextClassifier
    ticket.save(os.path.join(args.out, "ticket.keras"))  # loads with keras-hub alone
    logits = ticket.predict(bert_inputs(splits.x_test), verbose=0)
    print(f"stripped {type(ticket).__name__}: test accuracy "
          f"{np.mean(logits.argmax(-1) == splits.y_test):.3f} (not retrained)")
    if args.mask_granularity == "unit":
        small, report = keras_lottery.shrink(model, return_report=True)
        small.save(os.path.join(args.out, "shrunk.keras"))  # loads with keras-hub imported
        heads = [layer.num_heads for layer in small.layers
                 if isinstance(layer, keras.layers.MultiHeadAttention)]
        same = np.abs(small.predict(bert_inputs(splits.x_test), verbose=0) - logits).max()
        print(f"shrunk to {report['shrunk_parameters']:,} of {report['parameters']:,} "
              f"parameters, heads per block {heads}; largest logit change {same:.1e}")


if __name__ == "__main__":
    main()
