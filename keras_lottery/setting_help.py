"""The one-line help of every `SearchConfig` setting and the group it belongs to.

`apps.search` shows `HELP` as each flag's help and lists the flags by `GROUPS` in
`--helpfull`; the docs' flag tables are checked against the same field names
(tests/test_flagfiles.py, tests/test_bad_input.py).
"""

#: The help text of every setting: the flags of apps.search show it; the docs' flag tables
#: are checked against the field names (tests/test_flagfiles.py).
HELP = {
    "method": "Search method: cs (Continuous Sparsification), imp (Iterative Magnitude "
              "Pruning) or iss (Iterative Stochastic Sparsification).",
    "supermask": "Freeze the weights at w_0 and learn only the mask (cs or iss); the ticket "
                 "is evaluated without retraining.",
    "unmasked_layers": "Comma-separated layer names left without a mask (never pruned).",
    "mask_optimizer": "Optimizer of the mask logits s: same (as w), sgd or adam.",
    "mask_learning_rate": "Learning rate of s (0: the learning rate of w).",
    "mask_momentum": "SGD momentum of s with --mask_optimizer=sgd.",
    "prune_fraction": "IMP: share of the surviving weights pruned per round.",
    "prune_scope": "IMP: layerwise (each layer its own rate) or global (one threshold).",
    "prune_fraction_conv": "IMP layerwise rate of convolutions (0: --prune_fraction).",
    "prune_fraction_dense": "IMP layerwise rate of dense layers (0: --prune_fraction).",
    "prune_fraction_output": "IMP layerwise rate of the last masked layer (0: the dense rate).",
    "init_from": "Start from this saved Keras model (.keras; Sequential or functional, logits "
                 "out) instead of --model: its Dense/Conv layers get masks (sparsify), its "
                 "weights are w_0. With CS it turns on --mask_scaling, so the search starts at "
                 "the model's own outputs.",
    "model": "Model name from keras_lottery.models.",
    "dataset": "Data set name.",
    "data_dir": "Directory with the data set's local files (IDX for Fashion-MNIST).",
    "train_examples": "Use only this many training images (0: all).",
    "validation_examples": "Images held out from the training set for validation.",
    "rounds": "Number of search rounds.",
    "epochs": "Training epochs per round.",
    "batch_size": "Batch size.",
    "optimizer": "Optimizer of w and s: sgd or adam.",
    "learning_rate": "Learning rate.",
    "momentum": "SGD momentum.",
    "nesterov": "Use Nesterov momentum with SGD.",
    "weight_decay": "Weight decay on the weights (never on s); see --weight_decay_mode.",
    "weight_decay_mode": "decoupled (Keras's: w -= lr*wd*w) or coupled (PyTorch's and the "
                         "official CS code's: wd*w added to the gradient, before momentum).",
    "keep_optimizer_state": "Keep the optimizer's state (momenta, step count) across rounds, as "
                            "the official CS code does; by default each round starts fresh.",
    "reset": "CS round-end reset: paper (s <- min(beta_T*s_T, s0), Algorithm 3) or official "
             "(the released code: beta reset first, so s <- min(s_T, s0)).",
    "input_scaling": "standardize (per-channel mean 0, std 1 from the training set) or unit "
                     "(pixels / 255 in [0, 1], as the official CS code).",
    "mask_scaling": "CS: multiply the mask, soft and binary, by 1/sigmoid(s0), as the official "
                    "CS code (the network starts at w, not w*sigmoid(s0); the penalty is on the "
                    "scaled mask).",
    "mask_init": "s0: initial value of the mask logits s.",
    "mask_penalty": "lambda: weight of the L1 penalty ||sigmoid(beta*s)||_1.",
    "target_remaining": "The last round's ticket keeps exactly this fraction of the weights "
                        "(e.g. 0.05; round r of R aims at target**(r/R)); 0 turns it off.",
    "target_start": "Fraction of each round trained as plain CS before --target_remaining "
                    "starts re-centring the logits s.",
    "initial_temperature": "beta_0: temperature at the start of each round.",
    "final_temperature": "beta_T: temperature at the end of each round.",
    "temperature_per_epoch": "Anneal beta once per epoch instead of every step.",
    "official_temperature": "Anneal beta per epoch with the official CS code's exponent: epoch "
                            "e of E trains at beta_T**(e/(E-1)) (implies per-epoch steps).",
    "rewind_epoch": "k: rewind w <- w_k between rounds; -1 for no rewinding.",
    "ticket_epoch": "Tickets are retrained from the weights after this many epochs (0: w_0).",
    "ticket_epochs": "Epochs to retrain each round's ticket (0 skips retraining).",
    "reuse_next_round": "IMP with rewinding (--rewind_epoch = --ticket_epoch, --ticket_epochs = "
                        "--epochs): round r+1 trains ticket r from the same weights as long, so "
                        "its test accuracy is ticket r's and only the last ticket is retrained; "
                        "--noreuse_next_round retrains every ticket.",
    "dense_baseline": "Also train the dense network from w_0 for ticket_epoch + ticket_epochs epochs.",
    "seed": "Random seed.",
    "augment": "Augment training images: random crop after 4-pixel padding, horizontal flip.",
    "lr_decay_epochs": "Comma-separated epochs (within a round) at which the learning rate of w "
                       "is multiplied by --lr_decay_factor.",
    "lr_decay_factor": "Learning-rate decay factor.",
    "distribute": "auto (mirrored when several GPUs are visible), none, mirrored, multi_worker.",
    "mixed_precision": "none, mixed_float16 or mixed_bfloat16 (s and the mask math stay float32).",
    "dry_run": "Build model, data and callbacks, run 2 steps of each phase, write nothing, exit.",
    "deterministic": "Make CPU runs bit-for-bit repeatable (TensorFlow op determinism).",
    "overwrite": "Replace a run with other settings found in --output_dir.",
    "jit_compile": "Compile train steps with XLA.",
    "steps_per_execution": "Training steps per call into the compiled step, at most (the "
                           "largest divisor of an epoch's steps not above it). More saves "
                           "per-step Python work (progress bar, callbacks); the results stay "
                           "the same.",
    "output_dir": "Run directory: results.json, tickets/, tensorboard/.",
    "verbose": "Keras verbosity: 0 silent, 1 progress bars, 2 one line per epoch.",
}


#: What each setting is about: `apps.search --helpfull` lists the flags in these groups.
GROUPS = {
    "method": ("method", "supermask", "init_from", "unmasked_layers", "mask_init", "mask_penalty",
               "mask_scaling", "reset", "target_remaining", "target_start", "prune_fraction",
               "prune_scope", "prune_fraction_conv", "prune_fraction_dense",
               "prune_fraction_output", "reuse_next_round"),
    "schedule": ("rounds", "epochs", "batch_size", "optimizer", "learning_rate", "momentum",
                 "nesterov", "weight_decay", "weight_decay_mode", "keep_optimizer_state",
                 "lr_decay_epochs", "lr_decay_factor", "mask_optimizer", "mask_learning_rate",
                 "mask_momentum", "initial_temperature", "final_temperature",
                 "temperature_per_epoch", "official_temperature", "rewind_epoch",
                 "ticket_epoch", "ticket_epochs", "dense_baseline"),
    "data": ("model", "dataset", "data_dir", "train_examples", "validation_examples", "augment",
             "input_scaling"),
    "run": ("seed", "deterministic", "jit_compile", "steps_per_execution", "distribute",
            "mixed_precision", "dry_run", "overwrite", "output_dir", "verbose"),
}
