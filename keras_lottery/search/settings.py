"""The settings every search shares, each with its help, its group and its check.

A method's own settings (`s0`, `lambda` and its cost, the target, CS's temperatures and reset,
the pruning rates, ...) are declared in `keras_lottery.methods` and belong to the methods that
read them; `keras_lottery.search.config.SearchConfig` has a
field for each, `apps.search` a flag for each (its help, `--helpfull` groups, choices),
and the guide's flag table is checked against them (tests/test_flagfiles.py).
"""

import math

from keras_lottery import data, methods, models
from keras_lottery.layers import granularity
from keras_lottery.methods.base import Setting, at_least
from keras_lottery.search import distribute

OPTIMIZERS = ("sgd", "adam")
MASK_OPTIMIZERS = ("same",) + OPTIMIZERS
WEIGHT_DECAY_MODES = ("decoupled", "coupled")
PRECISIONS = ("none", "mixed_float16", "mixed_bfloat16")


def _method_help():
    return "Search method: " + ", ".join(
        methods.get(name).description for name in methods.available_methods()) + "."


def finite(value):
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    return None if ok else "must be a finite number"


def _decay_factor(value):
    return None if finite(value) is None and 0 < value <= 1 else "must be a number in (0, 1]"


def _mask_learning_rate(value):
    return None if finite(value) is None and value >= 0 else (
        "must be a finite number > 0, or 0 for the learning rate of w")


def budget_fraction(value):
    ok = finite(value) is None and 0 <= value <= 1
    return None if ok else "must be a fraction in (0, 1], or 0 for no budget"


def _unit_share(value):
    ok = finite(value) is None and 0 <= value < 1
    return None if ok else "must be a fraction in [0, 1) of each layer's units"


def _directory(value):
    return None if value else "must name a directory"


#: The shared settings, in the order of `SearchConfig`'s fields (the methods' follow).
SHARED = (
    Setting("method", "cs",
            _method_help(),
            group="method", choices=methods.available_methods),
    Setting("supermask", False,
            "Freeze the weights at w_0 and learn only the mask (cs or iss); the ticket is "
            "evaluated without retraining.",
            group="method"),
    Setting("init_from", "",
            "Start from this saved Keras model (.keras; Sequential or functional, logits out) "
            "instead of --model: its Dense/Conv layers get masks (sparsify), its weights are w_0."
            " With CS it turns on --mask_scaling, so the search starts at the model's own "
            "outputs.",
            group="method"),
    Setting("mask_granularity", "weight",
            "What one mask logit decides: weight (unstructured), unit (a whole neuron, conv "
            "filter or attention head: the ticket shrinks into a smaller, faster network) or "
            "block (1x4 inputs of a Dense unit, which TFLite keeps sparse; Dense layers only).",
            group="method", choices=granularity.SEARCH_GRANULARITIES),
    Setting("unmasked_layers", (),
            "Comma-separated layer names left without a mask (never pruned).",
            group="method"),
    Setting("target_macs", 0.0,
            "A budget: the last round's ticket deploys at this fraction of the dense network's "
            "multiply-accumulates per example, in (0, 1] (counted as the deployment record "
            "counts them: the shrunk network for unit tickets, kept weights otherwise; round r "
            "of R aims at F**(r/R)); CS and ISS steer lambda toward it and cut the ticket onto "
            "it, IMP and random pruning prune to it; 0 turns it off.",
            group="method", check=budget_fraction),
    Setting("target_parameters", 0.0,
            "A budget like --target_macs, in parameters (every stored weight but the masks).",
            group="method", check=budget_fraction),
    Setting("min_units", 1,
            "With a budget: the groups (units) every unit-masked layer keeps whatever they "
            "cost, so that no layer is emptied.",
            group="method", check=at_least(0, integer=True)),
    Setting("min_unit_fraction", 0.0,
            "With a budget: the share of each unit-masked layer's groups it keeps at least "
            "(e.g. 0.1), so that no layer becomes a bottleneck; 0 leaves --min_units alone.",
            group="method", check=_unit_share),
    Setting("unit_multiple", 1,
            "With a budget: every unit-masked layer keeps a multiple of this many units (or "
            "all of them), e.g. 8: the widths a width multiplier's network has and "
            "accelerators ask for; 1 keeps any count.",
            group="method", check=at_least(1, integer=True)),
    Setting("model", "lenet300_100",
            "Model name from keras_lottery.models.",
            group="data", choices=models.available_models),
    Setting("dataset", "fashion_mnist",
            "Data set name.",
            group="data", choices=data.available_datasets),
    Setting("data_dir", "",
            "Directory with the data set's local files (IDX for Fashion-MNIST).",
            group="data"),
    Setting("train_examples", 0,
            "Use only this many training images (0: all).",
            group="data", check=at_least(0, integer=True)),
    Setting("validation_examples", data.VALIDATION_EXAMPLES,
            "Images held out from the training set for validation.",
            group="data", check=at_least(0, integer=True)),
    Setting("augment", False,
            "Augment training images: random crop after 4-pixel padding, horizontal flip.",
            group="data"),
    Setting("input_scaling", "standardize",
            "standardize (per-channel mean 0, std 1 from the training set) or unit (pixels / 255 "
            "in [0, 1], as the official CS code).",
            group="data", choices=data.SCALINGS),
    Setting("image_size", 0,
            "Images as square RGB of this side (a gray channel repeated; zero-padded around the "
            "middle up to twice their side, e.g. Fashion-MNIST 28 -> 32, resized beyond); 0 "
            "keeps them as they are.",
            group="data", check=at_least(0, integer=True)),
    Setting("width_multiplier", 0.35,
            "--model=mobilenet_v2: its width multiplier alpha (keras.applications' 0.35, 0.5, "
            "0.75, 1.0, 1.3, 1.4 or any positive value without pretrained weights).",
            group="data", check=at_least(0, strict=True)),
    Setting("rounds", 3,
            "Number of search rounds.",
            group="schedule", check=at_least(1, integer=True)),
    Setting("epochs", 10,
            "Training epochs per round.",
            group="schedule", check=at_least(1, integer=True)),
    Setting("batch_size", 128,
            "Batch size.",
            group="schedule", check=at_least(1, integer=True)),
    Setting("optimizer", "sgd",
            "Optimizer of w and s: sgd or adam.",
            group="schedule", choices=OPTIMIZERS),
    Setting("learning_rate", 0.1,
            "Learning rate.",
            group="schedule", check=at_least(0, strict=True)),
    Setting("momentum", 0.9,
            "SGD momentum.",
            group="schedule", check=at_least(0)),
    Setting("nesterov", True,
            "Use Nesterov momentum with SGD.",
            group="schedule"),
    Setting("weight_decay", 1e-4,
            "Weight decay on the weights (never on s); see --weight_decay_mode.",
            group="schedule", check=at_least(0)),
    Setting("weight_decay_mode", "decoupled",
            "decoupled (Keras's: w -= lr*wd*w) or coupled (PyTorch's and the official CS code's: "
            "wd*w added to the gradient, before momentum).",
            group="schedule", choices=WEIGHT_DECAY_MODES),
    Setting("keep_optimizer_state", False,
            "Keep the optimizer's state (momenta, step count) across rounds, as the official CS "
            "code does; by default each round starts fresh.",
            group="schedule"),
    Setting("lr_decay_epochs", (),
            "Comma-separated epochs (within a round) at which the learning rate of w is "
            "multiplied by --lr_decay_factor.",
            group="schedule"),
    Setting("lr_decay_factor", 0.1,
            "Learning-rate decay factor.",
            group="schedule", check=_decay_factor),
    Setting("mask_optimizer", "same",
            "Optimizer of the mask logits s: same (as w), sgd or adam.",
            group="schedule", choices=MASK_OPTIMIZERS),
    Setting("mask_learning_rate", 0.0,
            "Learning rate of s (0: the learning rate of w).",
            group="schedule", check=_mask_learning_rate),
    Setting("mask_momentum", 0.0,
            "SGD momentum of s with --mask_optimizer=sgd.",
            group="schedule", check=at_least(0)),
    Setting("rewind_epoch", -1,
            "k: rewind w <- w_k between rounds; -1 for no rewinding.",
            group="schedule", check=at_least(-1, integer=True)),
    Setting("ticket_epoch", 2,
            "Tickets are retrained from the weights after this many epochs (0: w_0).",
            group="schedule", check=at_least(0, integer=True)),
    Setting("ticket_epochs", 10,
            "Epochs to retrain each round's ticket (0 skips retraining).",
            group="schedule", check=at_least(0, integer=True)),
    Setting("dense_baseline", True,
            "Also train the dense network from w_0 for ticket_epoch + ticket_epochs epochs.",
            group="schedule"),
    Setting("deployment", True,
            "Beside each exported ticket, write shrunk.keras (units removed) and ticket.tflite, "
            "and record their parameters, multiply-accumulates, file sizes and measured "
            "speedups over the dense network (results.json: deployment).",
            group="run"),
    Setting("latency_repeats", 15,
            "Interleaved repeats of the speedup measurement (median); 0 measures none.",
            group="run", check=at_least(0, integer=True)),
    Setting("latency_batch_sizes", (1, 256),
            "Comma-separated batch sizes at which the speedups are measured.",
            group="run", check=lambda sizes: None if sizes and all(
                isinstance(b, int) and b >= 1 for b in sizes) else
            "must be one or more integers >= 1"),
    Setting("seed", 0,
            "Random seed.",
            group="run"),
    Setting("deterministic", True,
            "Make CPU runs bit-for-bit repeatable (TensorFlow op determinism).",
            group="run"),
    Setting("jit_compile", False,
            "Compile train steps with XLA (TensorFlow; on JAX every step is jitted).",
            group="run"),
    Setting("steps_per_execution", 1,
            "Training steps per call into the compiled step, at most (the largest divisor of an "
            "epoch's steps not above it). More saves per-step Python work (progress bar, "
            "callbacks); the results stay the same.",
            group="run", check=at_least(1, integer=True)),
    Setting("distribute", "auto",
            "auto (mirrored when several GPUs are visible), none, mirrored, multi_worker.",
            group="run", choices=distribute.STRATEGIES),
    Setting("mixed_precision", "none",
            "none, mixed_float16 or mixed_bfloat16 (s and the mask math stay float32).",
            group="run", choices=PRECISIONS),
    Setting("dry_run", False,
            "Build model, data and callbacks, run 2 steps of each phase, write nothing, exit.",
            group="run"),
    Setting("overwrite", False,
            "Replace a run with other settings found in --output_dir.",
            group="run"),
    Setting("output_dir", "runs/quickstart",
            "Run directory: results.json, tickets/, tensorboard/.",
            group="run", check=_directory),
    Setting("verbose", 1,
            "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.",
            group="run"),
)
