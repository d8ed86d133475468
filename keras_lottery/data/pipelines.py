"""Input pipelines of a search: `tf.data` streams over the `Splits` of `data.datasets`.

- `epoch_stream`: the training batches of a phase, epoch by epoch, in an order
  keyed by (seed, phase stream, epoch), so a resumed phase sees the same data;
- `pipelines` / `evaluation_pipelines`: batched train, validation and test sets;
- `augment_batch`: the ResNet/VGG augmentation (random crop after 4-pixel
  padding, horizontal flip) on whole batches.
"""

import tensorflow as tf


def augment_batch(images, labels, seed, padding=4):
    """Random crop after `padding`-pixel zero padding, then a random horizontal flip,
    for a whole batch `images` of shape (batch, height, width, channels) at once.

    Each image gets its own offsets and flip, drawn by stateless ops keyed by
    `seed` (a pair of int64), so the augmentation of a seeded run is the same
    every time. The crop is two batched gathers (rows, then columns), so the
    cost per batch is a few vectorised ops rather than a few ops per image.
    """
    count = tf.shape(images)[0]
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [padding, padding], [padding, padding], [0, 0]])
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    offsets = tf.random.stateless_uniform([2, count], crop_seed, maxval=2 * padding + 1,
                                          dtype=tf.int32)
    rows = offsets[0][:, None] + tf.range(height)[None, :]
    columns = offsets[1][:, None] + tf.range(width)[None, :]
    flip = tf.random.stateless_uniform([count, 1], flip_seed, maxval=2, dtype=tf.int32) > 0
    columns = tf.where(flip, tf.reverse(columns, axis=[1]), columns)
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)
    cropped = tf.gather(cropped, columns, axis=2, batch_dims=1)
    cropped.set_shape((None, height, width, images.shape[-1]))
    return cropped, labels


def augment_crop_flip(image, label, seed, padding=4):
    """`augment_batch` for one image of shape (height, width, channels)."""
    images, _ = augment_batch(image[None], label, seed, padding)
    return images[0], label


def pipelines(splits, batch_size, seed=0, augment=False):
    """Returns `(train, validation, test)` datasets: the training set reshuffled
    every epoch with `seed` (and augmented batch by batch with `augment_batch` if asked),
    all batched and prefetched; the input images stay cached in memory."""
    autotune = tf.data.AUTOTUNE
    train = tf.data.Dataset.from_tensor_slices((splits.x_train, splits.y_train)).cache()
    train = train.shuffle(len(splits.x_train), seed=seed, reshuffle_each_iteration=True)
    train = train.batch(batch_size)
    if augment:
        # One stateless seed per batch, drawn from a seeded counter stream.
        seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
        train = tf.data.Dataset.zip((train, seeds)).map(
            lambda batch, pair: augment_batch(batch[0], batch[1], pair),
            num_parallel_calls=autotune, deterministic=True)
    train = train.prefetch(autotune)
    return (train,) + evaluation_pipelines(splits, batch_size)


def evaluation_pipelines(splits, batch_size):
    """Returns `(validation, test)` datasets, batched and prefetched, in a fixed order."""

    def evaluation(x, y):
        return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).prefetch(
            tf.data.AUTOTUNE)

    return evaluation(splits.x_val, splits.y_val), evaluation(splits.x_test, splits.y_test)


def epoch_stream(splits, batch_size, seed=0, stream=0, start_epoch=0, augment=False):
    """Training batches laid out epoch after epoch, from `start_epoch` on, without end.

    The order of epoch `e` is a stateless permutation keyed by
    `(seed, stream, e)` (and so is its augmentation), so a run resumed at epoch
    `e` sees exactly the batches an uninterrupted run sees. Batches never span
    two epochs; pass `steps_per_epoch=steps_per_epoch(...)` to `fit`.
    `stream` separates the phases of a search (each round, each ticket).
    """
    count = len(splits.x_train)
    images = tf.constant(splits.x_train)
    labels = tf.constant(splits.y_train)

    def one_epoch(epoch):
        key = tf.stack([tf.constant(seed, tf.int64), stream * 1_000_003 + epoch])
        order = tf.random.experimental.index_shuffle(
            tf.range(count, dtype=tf.int64), seed=key, max_index=count - 1)
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)

        def take(position, index):  # one gather per batch
            batch = (tf.gather(images, index), tf.gather(labels, index))
            if not augment:
                return batch
            return augment_batch(*batch, tf.random.experimental.stateless_fold_in(key, position))

        return batches.enumerate().map(take, num_parallel_calls=tf.data.AUTOTUNE,
                                       deterministic=True)

    epochs = tf.data.Dataset.range(start_epoch, 2**62)
    return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)


def steps_per_epoch(splits, batch_size):
    """Batches in one epoch of `epoch_stream` (the last one may be partial)."""
    return -(-len(splits.x_train) // batch_size)
