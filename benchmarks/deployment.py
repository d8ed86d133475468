"""Deployment ratios, one process: a ticket's speedup over the dense network in Keras and TFLite.

For each model a random *unit* ticket keeps `--kept_units` of every masked layer's units (the
output layer whole) and, for models of Dense layers only, a random *block* ticket keeps
`--kept_blocks` of the 1x4 input blocks. Timed, interleaved, median of `--repeats`:
- Keras (closure-compiled `tf.function`, the process's threads): the dense network, the
  stripped unit ticket (zeros in dense kernels) and the shrunk unit ticket (`shrink`);
- TFLite (`ai-edge-litert`, `--threads` each): the dense network, the shrunk unit ticket and
  the block ticket converted with the sparsity optimization (`export_tflite`).
Speedups are dense / variant, each against the dense model of its runtime, measured in the
same run: a shared, noisy machine makes absolute times meaningless, ratios less so.

    python3 -m benchmarks.deployment [--models=lenet300_100,conv4,conv6,resnet18]
        [--batch_sizes=1,64,256] [--threads=1,2] [--kept_units=0.05] [--kept_blocks=0.05]

Text models (`--models=gpt_tiny`, 128 characters of context, a vocabulary of 64) are timed on
full-context forward passes of random ids, and their generation of `--generate` characters (one
forward pass per character, batch 1) is timed too, as characters per second dense / ticket.

With `--shrunk=PATH,...` (one model in `--models`) the unit tickets are real ones instead: the
`shrunk.keras` files a search wrote (`ticket/round_<r>/shrunk.keras`; a `ticket.keras` of a
run with `--nodeployment` is shrunk here), each timed against the
dense network of that model, which is how REPRODUCTION.md's tickets are re-measured on an idle
machine.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from benchmarks.step_time import SHAPES  # noqa: E402
from keras_lottery import models, tickets  # noqa: E402
from keras_lottery.layers import masked_layers  # noqa: E402
from keras_lottery.tickets.deployment import (  # noqa: E402
    generation_rates,
    keras_runner,
    load_deployed,
    median_latencies,
    random_batch,
)

#: Text models: `(input shape, vocabulary size)`; their classes are the vocabulary.
TEXT = {"gpt_tiny": ((128,), 64)}


def random_ticket(model_name, granularity, kept, seed=0, shape=None):
    """The model (on inputs of `shape`, default the benchmark's) with fixed masks keeping `kept`
    of each masked layer's groups at random (at least one; the output layer keeps all)."""
    keras.utils.set_random_seed(seed)
    text_shape, vocabulary = TEXT.get(model_name, (None, None))
    model = models.build(model_name, shape or text_shape or SHAPES[model_name],
                         vocabulary or 10, vocabulary_size=vocabulary, mask_rule="fixed",
                         mask_init=1.0, mask_granularity=granularity)
    rng = np.random.RandomState(seed)
    layers = masked_layers(model)
    for layer in layers if vocabulary else layers[:-1]:  # (gpt_tiny's output is not masked)
        groups = int(np.prod(layer.mask_logits.shape))
        chosen = rng.permutation(groups)[:max(1, int(round(kept * groups)))]
        mask = np.zeros(groups, bool)
        mask[chosen] = True
        layer.set_ticket_mask(mask.reshape(layer.mask_logits.shape))
    return model


def variants(model_name, kept_units, kept_blocks, folder, shrunk=None, shape=None):
    """`({name: Keras runner}, {name: .tflite path})` of one model on inputs of `shape`:
    random tickets, or the saved shrunk tickets `shrunk` (`{path: model}`)."""
    dense = tickets.strip(random_ticket(model_name, "unit", 1.0, shape=shape))
    runners = {"dense": keras_runner(dense)}
    files = {"dense": os.path.join(folder, "dense.tflite")}
    tickets.export_tflite(dense, files["dense"], sparse=False)
    unit = None if shrunk else random_ticket(model_name, "unit", kept_units, shape=shape)
    if unit is not None:
        runners["unit stripped"] = keras_runner(tickets.strip(unit))
    for index, (name, model) in enumerate((shrunk or {"unit shrunk": tickets.shrink(unit)}).items()):
        runners[name] = keras_runner(model)
        files[name] = os.path.join(folder, f"shrunk_{index}.tflite")
        tickets.export_tflite(model, files[name])
    if unit is not None and all(isinstance(layer, keras.layers.Dense)
                                for layer in masked_layers(unit)):
        files["block sparse"] = os.path.join(folder, "block.tflite")
        tickets.export_tflite(random_ticket(model_name, "block", kept_blocks, shape=shape),
                              files["block sparse"])
    return runners, files


def _print_generation(model_name, runtime, runners, inputs, args):
    """Prints each ticket's generation speed over the dense network's in one `runtime`."""
    window = inputs[min(inputs)][:1]
    rates = generation_rates(runners, window, args.generate, max(1, args.repeats // 7))
    for name, rate in rates.items():
        if name != "dense":
            print(f"{model_name:13s} {runtime} {name} generation: {rate:7.1f} chars/s, "
                  f"{rate / rates['dense']:5.2f}x dense ({rates['dense']:.1f} chars/s)",
                  flush=True)


def speedups(times):
    return {name: {b: times["dense"][b] / t for b, t in per.items()}
            for name, per in times.items() if name != "dense"}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", default="lenet300_100,conv4,conv6,resnet18")
    parser.add_argument("--batch_sizes", default="1,64,256")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--kept_units", type=float, default=0.05)
    parser.add_argument("--kept_blocks", type=float, default=0.05)
    parser.add_argument("--repeats", type=int, default=21)
    parser.add_argument("--shrunk", default="", help="saved tickets of the one model (shrunk.keras or ticket.keras)")
    parser.add_argument("--generate", type=int, default=128,
                        help="characters a text model generates, timed (0: none)")
    args = parser.parse_args(argv)
    shrunk_files = [path for path in args.shrunk.split(",") if path]
    if shrunk_files and len(args.models.split(",")) != 1:
        sys.exit(f"error: --shrunk needs one model in --models, got {args.models!r}")
    missing = [path for path in shrunk_files if not os.path.isfile(path)]
    if missing:
        sys.exit(f"error: --shrunk: no such file {missing[0]!r}")
    shrunk = {path: load_deployed(path) for path in shrunk_files}
    print(f"command: python3 -m benchmarks.deployment {' '.join(sys.argv[1:])}", flush=True)
    batches = [int(b) for b in args.batch_sizes.split(",")]
    table = {}
    for model_name in args.models.split(","):
        shape = tuple(next(iter(shrunk.values())).inputs[0].shape[1:]) if shrunk else (
            TEXT[model_name][0] if model_name in TEXT else SHAPES[model_name])
        text, vocabulary = model_name in TEXT, TEXT.get(model_name, (None, 10))[1]
        inputs = {b: random_batch(shape, "int32" if text else "float32", b, vocabulary)
                  for b in batches}
        with tempfile.TemporaryDirectory() as folder:
            runners, files = variants(model_name, args.kept_units, args.kept_blocks, folder,
                                      shrunk, shape)
            rows = {f"keras {name}": row for name, row in
                    speedups(median_latencies(runners, inputs, args.repeats)).items()}
            generates = model_name in TEXT and args.generate
            if generates:
                _print_generation(model_name, "keras", runners, inputs, args)
            for threads in (int(t) for t in args.threads.split(",")):
                lite = {name: tickets.TFLiteModel(path, threads) for name, path in files.items()}
                rows.update({f"tflite x{threads} {name}": row for name, row in
                             speedups(median_latencies(lite, inputs, args.repeats)).items()})
                if generates:
                    _print_generation(model_name, f"tflite x{threads}", lite, inputs, args)
        table[model_name] = rows
        for name, row in rows.items():
            print(f"{model_name:13s} {name:26s} " + "  ".join(
                f"batch {b}: {row[b]:5.2f}x" for b in batches), flush=True)
    return table


if __name__ == "__main__":
    main()
