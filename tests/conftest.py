import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gzip  # noqa: E402

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_collection_modifyitems(config, items):
    """Skips the tests marked `tensorflow_only` under another Keras backend (the layer suite
    also runs under JAX: tests/test_backends.py)."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs the TensorFlow backend, not {backend}")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


def write_idx(path, array):
    """Writes `array` (uint8) as an IDX file, gzipped when `path` ends in .gz."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wb") as handle:
        handle.write(header + array.tobytes())


def write_fixture_data(directory):
    """Writes a tiny Fashion-MNIST-shaped data set in IDX files (the class is a bright row)
    into `directory`; returns its path."""
    rng = np.random.RandomState(0)

    def make(n):
        labels = rng.randint(0, 10, n)
        images = rng.randint(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 + 2 * label, :] = 255
        return images, labels

    directory = str(directory)
    train_images, train_labels = make(1200)
    test_images, test_labels = make(300)
    write_idx(os.path.join(directory, "train-images-idx3-ubyte.gz"), train_images)
    write_idx(os.path.join(directory, "train-labels-idx1-ubyte.gz"), train_labels)
    write_idx(os.path.join(directory, "t10k-images-idx3-ubyte.gz"), test_images)
    write_idx(os.path.join(directory, "t10k-labels-idx1-ubyte.gz"), test_labels)
    return directory


def free_ports(count):
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [sock.getsockname()[1] for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def tiny_config(idx_dir, out, **settings):
    """A `SearchConfig` for a seconds-long search on the fixture data (one round of one epoch,
    no retraining, no dense baseline, silent); `settings` override it."""
    from keras_lottery.search.config import SearchConfig

    base = dict(data_dir=idx_dir, validation_examples=200, rounds=1, epochs=1, batch_size=64,
                ticket_epoch=0, ticket_epochs=0, dense_baseline=False, output_dir=str(out),
                verbose=0, deployment=False)
    base.update(settings)
    return SearchConfig(**base)


@pytest.fixture
def idx_dir(tmp_path):
    """A tiny Fashion-MNIST-shaped data set in IDX files: the class is a bright row."""
    return write_fixture_data(tmp_path)
