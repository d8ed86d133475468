"""Room `data`: the data sets of a search and their `tf.data` pipelines.

    datasets   load(name, data_dir) -> Splits: Fashion-MNIST (IDX files, the Debian package,
               tfds), MNIST, CIFAR-10 (binary batches, tfds), kjv_genres, kjv_chars
    text       kjv_genres: King James verses as token ids, 6 groups of books, split by chapter
    characters kjv_chars: the same text as 128-character windows, the next character to predict
    errors     DataError
    pipelines  epoch_stream (a phase's training batches, resumable), evaluation_pipelines,
               the crop-and-flip augmentation

May import: nothing of keras_lottery.
"""

from keras_lottery.data.datasets import (
                                         CIFAR10_RECORD,
                                         CIFAR10_TEST_FILE,
                                         CIFAR10_TRAIN_FILES,
                                         DEBIAN_FASHION_MNIST,
                                         LANGUAGE_MODELS,
                                         SCALINGS,
                                         VALIDATION_EXAMPLES,
                                         DataError,
                                         Splits,
                                         available_datasets,
                                         load,
                                         load_idx_directory,
                                         read_cifar10_binary,
                                         read_idx,
)
from keras_lottery.data.pipelines import (
                                         augment_batch,
                                         augment_crop_flip,
                                         epoch_stream,
                                         evaluation_pipelines,
                                         pipelines,
                                         steps_per_epoch,
)

__all__ = ["CIFAR10_RECORD", "CIFAR10_TEST_FILE", "CIFAR10_TRAIN_FILES",
           "DEBIAN_FASHION_MNIST", "DataError", "LANGUAGE_MODELS", "SCALINGS", "Splits",
           "VALIDATION_EXAMPLES",
           "augment_batch", "augment_crop_flip", "available_datasets", "epoch_stream",
           "evaluation_pipelines", "load", "load_idx_directory", "pipelines",
           "read_cifar10_binary", "read_idx", "steps_per_epoch"]
