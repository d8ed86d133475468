"""Data sets as `tf.data` pipelines: Fashion-MNIST, MNIST, CIFAR-10 and text (`kjv_*`).

`load(name, data_dir)` returns `Splits` (train / validation / test numpy
arrays, normalised per channel with training-set statistics); `keras_lottery.data.pipelines`
turns them into batched, shuffled, prefetched `tf.data.Dataset`s, with the
ResNet/VGG augmentation (random crop after 4-pixel padding, horizontal flip)
when asked.

Sources, in order:
- `fashion_mnist`: IDX files in `data_dir`, the Debian package
  `dataset-fashion-mnist` (`/usr/share/datasets/fashion-mnist/`), tfds.
- `mnist`: IDX files in `data_dir`, tfds.
- `cifar10`: the *binary* version in `data_dir` (`data_batch_1.bin` ..
  `data_batch_5.bin`, `test_batch.bin`, optionally inside
  `cifar-10-batches-bin/`), tfds. The pickle version is never read.
- `kjv_genres`: verses of the King James Bible as token ids, 6 groups of books
  (`keras_lottery.data.text`): Debian's `bible-kjv-text`, or `kjv.txt` in `data_dir`.
- `kjv_chars`: the same text as windows of 128 characters, labelled with the next character
  at every position (`keras_lottery.data.characters`): a character-level language model.
tfds needs a download or a prepared tfds directory (`data_dir` doubles as it).
"""

import dataclasses
import gzip
import os

import numpy as np

from keras_lottery.data import characters, text
from keras_lottery.data.errors import DataError

DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
VALIDATION_EXAMPLES = 5000
#: Input scalings `load` offers: per-channel standardisation, or pixels / 255.
SCALINGS = ("standardize", "unit")

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclasses.dataclass
class Splits:
    """Images (float32, NHWC) or token ids (int32, with `vocabulary_size`) and integer labels
    of one data set."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    vocabulary_size: int = None

    @property
    def input_shape(self):
        return tuple(self.x_train.shape[1:])


def read_idx(path):
    """Reads one IDX file (optionally gzipped) into a numpy array, checking its header."""
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(f"Cannot read IDX file {path}: {error}.") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an IDX file (bad magic number).")
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path} is truncated (header of {header} bytes, file has {len(raw)}).")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path} is truncated or corrupt: shape {shape} needs {expected} bytes of data, "
            f"file has {len(raw) - header}."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def _find_idx(directory, stem):
    for candidate in (stem, stem + ".gz"):
        path = os.path.join(directory, candidate)
        if os.path.exists(path):
            return path
    return None


def load_idx_directory(directory):
    """Loads the four MNIST-style IDX files in `directory`; returns train and test arrays."""
    if not os.path.isdir(directory):
        raise DataError(f"Data directory {directory!r} does not exist.")
    arrays = {}
    for key, stem in _IDX_FILES.items():
        path = _find_idx(directory, stem)
        if path is None:
            raise DataError(f"{directory!r} has no {stem} (or {stem}.gz).")
        arrays[key] = read_idx(path)
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{directory!r}: {split} images {images.shape} and labels {labels.shape} "
                "do not form an (N, H, W) / (N,) pair."
            )
    return (arrays["train_images"], arrays["train_labels"]), (
        arrays["test_images"], arrays["test_labels"])


def _load_tfds(name, data_dir):
    import tensorflow_datasets as tfds  # imported lazily: it is slow to import

    try:
        train, test = tfds.load(name, split=["train", "test"], batch_size=-1,
                                as_supervised=True, data_dir=data_dir)
    except Exception as error:  # tfds raises many kinds of errors when offline
        raise DataError(
            f"Could not load {name!r} through tensorflow_datasets ({type(error).__name__}); "
            "pass --data_dir with local files instead."
        ) from None
    (x_train, y_train), (x_test, y_test) = tfds.as_numpy(train), tfds.as_numpy(test)
    return (x_train, y_train), (x_test, y_test)


def _load_fashion_mnist(data_dir):
    if data_dir:
        return load_idx_directory(data_dir)
    if os.path.isdir(DEBIAN_FASHION_MNIST):
        return load_idx_directory(DEBIAN_FASHION_MNIST)
    return _load_tfds("fashion_mnist", None)


def _load_mnist(data_dir):
    if data_dir and _find_idx(data_dir, _IDX_FILES["train_images"]):
        return load_idx_directory(data_dir)
    return _load_tfds("mnist", data_dir)


CIFAR10_RECORD = 1 + 32 * 32 * 3
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch.bin"


def read_cifar10_binary(path):
    """Reads one CIFAR-10 binary batch: records of 1 label byte + 3072 CHW pixel bytes."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError as error:
        raise DataError(f"Cannot read CIFAR-10 file {path}: {error}.") from None
    if not raw or len(raw) % CIFAR10_RECORD:
        raise DataError(
            f"{path} is truncated or not a CIFAR-10 binary batch: {len(raw)} bytes is not a "
            f"multiple of the {CIFAR10_RECORD}-byte record.")
    records = np.frombuffer(raw, np.uint8).reshape(-1, CIFAR10_RECORD)
    labels = records[:, 0].astype(np.int32)
    if labels.max() > 9:
        raise DataError(f"{path} is corrupt: label {labels.max()} is not a CIFAR-10 class (0-9).")
    images = records[:, 1:].reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _load_cifar10(data_dir):
    if data_dir:
        for directory in (data_dir, os.path.join(data_dir, "cifar-10-batches-bin")):
            if os.path.exists(os.path.join(directory, CIFAR10_TEST_FILE)):
                missing = [f for f in CIFAR10_TRAIN_FILES
                           if not os.path.exists(os.path.join(directory, f))]
                if missing:
                    raise DataError(f"{directory!r} has {CIFAR10_TEST_FILE} but not {missing}.")
                train = [read_cifar10_binary(os.path.join(directory, f))
                         for f in CIFAR10_TRAIN_FILES]
                x_test, y_test = read_cifar10_binary(os.path.join(directory, CIFAR10_TEST_FILE))
                return (np.concatenate([x for x, _ in train]),
                        np.concatenate([y for _, y in train])), (x_test, y_test)
        if not os.path.isdir(data_dir):
            raise DataError(f"Data directory {data_dir!r} does not exist.")
    return _load_tfds("cifar10", data_dir)


_LOADERS = {
    "fashion_mnist": (_load_fashion_mnist, 10),
    "mnist": (_load_mnist, 10),
    "cifar10": (_load_cifar10, 10),
    "kjv_genres": (None, len(text.GROUPS)),  # text: its own split and no pixel scaling
    "kjv_chars": (None, None),  # characters: as many classes as the vocabulary has
}
#: Data sets whose labels are the next token at every position (a causal language model):
#: their loss in bits per character (`loss / ln 2`) is reported beside accuracy.
LANGUAGE_MODELS = ("kjv_chars",)


def available_datasets():
    return sorted(_LOADERS)


def _as_nhwc(images):
    images = np.asarray(images, np.float32)
    return images[..., None] if images.ndim == 3 else images


def as_rgb_size(images, size):
    """NHWC images at `size x size` with 3 channels (a gray channel repeated): zero-padded
    around the middle when `size` is at most twice their side (Fashion-MNIST's 28 -> 32, as
    mobile networks expect), else resized bilinearly. Applied after normalisation, so the
    padding is the mean pixel (or black with `scaling="unit"`)."""
    height, width, channels = images.shape[1:]
    if channels == 1:
        images = np.repeat(images, 3, axis=-1)
    if size < max(height, width):
        raise DataError(f"image_size={size} is smaller than the images ({height}x{width}).")
    if size <= 2 * max(height, width):
        top, left = (size - height) // 2, (size - width) // 2
        padding = ((0, 0), (top, size - height - top), (left, size - width - left), (0, 0))
        return np.pad(images, padding).astype(np.float32)
    import tensorflow as tf

    return np.concatenate([tf.image.resize(images[i:i + 4096], (size, size)).numpy()
                           for i in range(0, len(images), 4096)]).astype(np.float32)


def load(name, data_dir=None, validation_examples=VALIDATION_EXAMPLES, train_examples=None,
         seed=0, scaling="standardize", image_size=0):
    """Loads data set `name` and returns normalised `Splits`.

    The validation split is `validation_examples` images held out from the
    training set (a fixed permutation drawn from `seed`; 0 holds out none);
    `train_examples` keeps only that many of the remaining training images (for
    quick runs). `kjv_genres` has its own fixed split by chapter (`validation_examples`
    and `scaling` do not apply to it). `scaling`: `"standardize"` (per-channel mean 0 and std 1 from
    the training images) or `"unit"` (pixel values / 255, in [0, 1]). `image_size` (images
    only; 0 keeps them): square RGB images of that side (`as_rgb_size`).
    """
    if scaling not in SCALINGS:
        raise DataError(f"Unknown scaling {scaling!r}; expected one of {list(SCALINGS)}.")
    if name not in _LOADERS:
        raise DataError(f"Unknown dataset {name!r}; expected one of {available_datasets()}.")
    loader, num_classes = _LOADERS[name]
    if name == "kjv_genres":
        *arrays, vocabulary = text.load_kjv_genres(data_dir, train_examples, seed)
        return Splits(*arrays, num_classes, vocabulary_size=vocabulary)
    if name == "kjv_chars":
        *arrays, vocabulary = characters.load_kjv_chars(data_dir, train_examples, seed)
        return Splits(*arrays, vocabulary, vocabulary_size=vocabulary)
    (x_train, y_train), (x_test, y_test) = loader(data_dir)
    x_train, x_test = _as_nhwc(x_train), _as_nhwc(x_test)
    y_train, y_test = np.asarray(y_train, np.int32), np.asarray(y_test, np.int32)
    if validation_examples >= len(x_train):
        raise DataError(
            f"validation_examples={validation_examples} leaves no training data "
            f"({len(x_train)} training images)."
        )
    order = np.random.RandomState(seed).permutation(len(x_train))
    val_index, train_index = order[:validation_examples], order[validation_examples:]
    if train_examples:
        train_index = train_index[:train_examples]
    x_val, y_val = x_train[val_index], y_train[val_index]
    x_train, y_train = x_train[train_index], y_train[train_index]
    axes = tuple(range(x_train.ndim - 1))
    if scaling == "unit":
        mean, std = np.zeros((1,) * x_train.ndim, np.float32), np.float32(255.0)
    else:
        mean = x_train.mean(axis=axes, keepdims=True)
        std = x_train.std(axis=axes, keepdims=True) + 1e-7

    def normalise(x):
        x = ((x - mean) / std).astype(np.float32)
        return as_rgb_size(x, image_size) if image_size else x

    return Splits(normalise(x_train), y_train, normalise(x_val), y_val, normalise(x_test),
                  y_test, num_classes)
