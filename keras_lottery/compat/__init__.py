"""The Keras internals keras_lottery relies on, in one room (pinned by tests/test_compat.py):
`compat.distribution` (under `tf.distribute`) and `compat.internals` (the rest), both read
as `keras_lottery.compat.<name>`. May import: nothing of keras_lottery (the floor; Keras and
TensorFlow only).

Only what the public API cannot do lives here:

- `ReplicaLocalLosses`: a layer's `add_loss` terms kept per replica. Keras
  stores a layer's added losses in one list per layer (`Layer._losses`) that
  the model's call clears at entry (`Layer._clear_losses`) and that
  `Model.losses` reads back (`Layer._get_own_losses`). Under
  `tf.distribute.MirroredStrategy` each replica traces the step in its own
  thread, and the threads take turns at every cross-replica merge; when a
  merge falls inside the forward pass (a synchronized BatchNormalization, a
  variable updated with aggregation), the next replica clears and refills the
  shared lists, and each replica's loss picks up the other replicas' terms or
  loses its own. The mask penalty `lambda * ||m||_1` then enters the gradient
  a wrong number of times. Masked layers keep their penalty in a list per
  thread instead, so each replica's loss holds its own penalty exactly once.
"""

from keras_lottery.compat.distribution import (  # noqa: F401
    MULTI_STEP_BREAKS_WITH_REPLICAS,
    ReplicaLocalLosses,
    build_from_local_batch,
    patch_multi_worker_fit,
    steps_per_execution_for,
)
from keras_lottery.compat.internals import (  # noqa: F401
    adam_slots,
    build_input_shape,
    causal_padding,
    drop_seed_generator,
    flatten_layers,
    input_channels,
    is_functional,
    keras_mask,
    keyed_layers,
    load_keras_archive,
    optimizer_own_variables,
    optimizer_slot,
    optimizer_trainable_variables,
    own_variables,
    plain_tf_variable,
    producing_layer,
    read_by_other_layers,
    refresh_call_signature,
    reset_compiled_functions,
    retrace_compiled_functions,
    run_through_graph,
    sync_backend_state,
    tflite_ops,
    unlocked_tracking,
)
