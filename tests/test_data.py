import gzip

import numpy as np
import pytest
import tensorflow as tf

from conftest import write_idx
from keras_lottery import data


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


@pytest.mark.skipif(not data.os.path.isdir(data.DEBIAN_FASHION_MNIST),
                    reason="needs the dataset-fashion-mnist Debian package")
def test_debian_fashion_mnist_is_found():
    splits = data.load("fashion_mnist")
    assert len(splits.x_train) == 55000 and len(splits.x_val) == 5000
    assert len(splits.x_test) == 10000 and set(np.unique(splits.y_test)) == set(range(10))
