import gzip
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import write_idx

from keras_lottery import data
from keras_lottery.data import datasets


def test_read_idx_round_trip(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "b-idx3-ubyte.gz"):
        path = str(tmp_path / name)
        write_idx(path, array)
        np.testing.assert_array_equal(data.read_idx(path), array)


def test_truncated_and_foreign_files_are_rejected(tmp_path):
    path = str(tmp_path / "x-idx3-ubyte")
    write_idx(path, np.zeros((4, 5, 5)))
    with open(path, "rb") as handle:
        raw = handle.read()
    with open(path, "wb") as handle:
        handle.write(raw[:-7])
    with pytest.raises(data.DataError, match="truncated"):
        data.read_idx(path)
    with open(path, "wb") as handle:
        handle.write(b"PK\x03\x04 not an idx file")
    with pytest.raises(data.DataError, match="magic"):
        data.read_idx(path)
    bad_gz = str(tmp_path / "y-idx3-ubyte.gz")
    with open(bad_gz, "wb") as handle:
        handle.write(gzip.compress(raw)[:20])
    with pytest.raises(data.DataError):
        data.read_idx(bad_gz)


def test_load_from_data_dir_splits_and_normalises(idx_dir):
    splits = data.load("fashion_mnist", idx_dir, validation_examples=200, seed=3)
    assert splits.input_shape == (28, 28, 1) and splits.num_classes == 10
    assert len(splits.x_train) == 1000 and len(splits.x_val) == 200 and len(splits.x_test) == 300
    assert abs(splits.x_train.mean()) < 1e-3 and abs(splits.x_train.std() - 1) < 1e-2
    again = data.load("fashion_mnist", idx_dir, validation_examples=200, seed=3)
    np.testing.assert_array_equal(splits.y_val, again.y_val)
    subset = data.load("fashion_mnist", idx_dir, validation_examples=200, train_examples=50)
    assert len(subset.x_train) == 50


def test_missing_directory_and_unknown_dataset(tmp_path):
    with pytest.raises(data.DataError, match="does not exist"):
        data.load("fashion_mnist", str(tmp_path / "nowhere"))
    with pytest.raises(data.DataError, match="no train-images"):
        data.load("fashion_mnist", str(tmp_path))
    with pytest.raises(data.DataError, match="Unknown dataset 'imagenet'"):
        data.load("imagenet")


def test_pipelines_batch_and_reshuffle(idx_dir):
    splits = data.load("fashion_mnist", idx_dir, validation_examples=200)
    train, validation, test = data.pipelines(splits, batch_size=64, seed=1)
    first = np.concatenate([y.numpy() for _, y in train])
    second = np.concatenate([y.numpy() for _, y in train])
    assert sorted(first) == sorted(splits.y_train) and not np.array_equal(first, second)
    x, y = next(iter(test))
    assert x.shape == (64, 28, 28, 1) and x.dtype == tf.float32
    assert sum(len(y) for _, y in validation) == 200


@pytest.mark.skipif(not os.path.isdir(data.DEBIAN_FASHION_MNIST),
                    reason="needs the dataset-fashion-mnist Debian package")
def test_debian_fashion_mnist_is_found():
    splits = data.load("fashion_mnist")
    assert len(splits.x_train) == 55000 and len(splits.x_val) == 5000
    assert len(splits.x_test) == 10000 and set(np.unique(splits.y_test)) == set(range(10))


def _write_cifar(directory, count=10, seed=0):
    rng = np.random.RandomState(seed)
    directory.mkdir(parents=True, exist_ok=True)
    records = {}
    for name in data.CIFAR10_TRAIN_FILES + (data.CIFAR10_TEST_FILE,):
        batch = rng.randint(0, 256, (count, data.CIFAR10_RECORD)).astype(np.uint8)
        batch[:, 0] = rng.randint(0, 10, count)
        (directory / name).write_bytes(batch.tobytes())
        records[name] = batch
    return records


def test_cifar10_binary_batches_are_read_in_hwc_order(tmp_path):
    records = _write_cifar(tmp_path / "cifar-10-batches-bin")
    images, labels = data.read_cifar10_binary(
        str(tmp_path / "cifar-10-batches-bin" / data.CIFAR10_TEST_FILE))
    raw = records[data.CIFAR10_TEST_FILE]
    np.testing.assert_array_equal(labels, raw[:, 0])
    # Pixel (row 3, col 5) of the green channel sits at 1024 + 3 * 32 + 5 in the record.
    np.testing.assert_array_equal(images[:, 3, 5, 1], raw[:, 1 + 1024 + 3 * 32 + 5])
    splits = data.load("cifar10", str(tmp_path), validation_examples=10)
    assert splits.input_shape == (32, 32, 3) and len(splits.x_train) == 40
    # Per-channel normalisation with training statistics.
    np.testing.assert_allclose(splits.x_train.mean(axis=(0, 1, 2)), 0, atol=1e-4)


def test_cifar10_rejects_truncated_and_corrupt_batches(tmp_path):
    directory = tmp_path / "c"
    _write_cifar(directory)
    path = directory / "data_batch_3.bin"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(data.DataError, match="truncated"):
        data.load("cifar10", str(directory))
    _write_cifar(directory)
    raw = bytearray((directory / "test_batch.bin").read_bytes())
    raw[0] = 17
    (directory / "test_batch.bin").write_bytes(bytes(raw))
    with pytest.raises(data.DataError, match="label 17"):
        data.load("cifar10", str(directory))
    (directory / "data_batch_5.bin").unlink()
    with pytest.raises(data.DataError, match="data_batch_5.bin"):
        data.load("cifar10", str(directory))


def test_mnist_reads_idx_files_from_data_dir(idx_dir):
    splits = data.load("mnist", idx_dir, validation_examples=100)
    assert splits.input_shape == (28, 28, 1) and len(splits.x_test) == 300


def test_augmentation_crops_flips_and_repeats_with_the_seed():
    image = tf.reshape(tf.range(8 * 8 * 1, dtype=tf.float32), (8, 8, 1))
    outputs = [augmented.numpy() for augmented, _ in (
        data.augment_crop_flip(image, 0, tf.constant([i, 7], tf.int64)) for i in range(40))]
    assert all(o.shape == (8, 8, 1) for o in outputs)
    assert len({o.tobytes() for o in outputs}) > 10  # many different crops and flips
    again = data.augment_crop_flip(image, 0, tf.constant([3, 7], tf.int64))[0].numpy()
    np.testing.assert_array_equal(again, outputs[3])
    # Every output is a shifted window of the zero-padded image, possibly mirrored.
    padded = np.pad(image.numpy()[..., 0], 4)
    windows = {padded[r:r + 8, c:c + 8].tobytes() for r in range(9) for c in range(9)}
    windows |= {padded[r:r + 8, c:c + 8][:, ::-1].copy().tobytes() for r in range(9) for c in range(9)}
    assert all(o[..., 0].tobytes() in windows for o in outputs)
    # A batch is augmented at once, each image with its own crop and flip.
    batch, _ = data.augment_batch(tf.stack([image] * 32), tf.zeros(32), tf.constant([1, 2], tf.int64))
    batch = batch.numpy()
    assert len({b.tobytes() for b in batch}) > 10
    assert all(b[..., 0].tobytes() in windows for b in batch)


def test_augmented_pipeline_is_repeatable_for_a_seed(idx_dir):
    splits = data.load("fashion_mnist", idx_dir, validation_examples=200)
    first = next(iter(data.pipelines(splits, 32, seed=5, augment=True)[0]))[0].numpy()
    second = next(iter(data.pipelines(splits, 32, seed=5, augment=True)[0]))[0].numpy()
    np.testing.assert_array_equal(first, second)


def test_image_size_pads_to_square_rgb_or_resizes(idx_dir):
    plain = data.load("fashion_mnist", idx_dir, validation_examples=100)
    padded = data.load("fashion_mnist", idx_dir, validation_examples=100, image_size=32)
    assert padded.input_shape == (32, 32, 3) and len(padded.x_train) == len(plain.x_train)
    np.testing.assert_array_equal(padded.x_test[:, 2:30, 2:30, 1], plain.x_test[..., 0])
    assert not padded.x_test[:, :2].any() and not padded.x_test[:, :, 30:].any()
    resized = datasets.as_rgb_size(plain.x_test[:8], 64)
    assert resized.shape == (8, 64, 64, 3) and resized[:, 30:34, 30:34].std() > 0
    with pytest.raises(data.DataError, match="image_size=20 is smaller"):
        datasets.as_rgb_size(plain.x_test[:2], 20)
