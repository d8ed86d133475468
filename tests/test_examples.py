"""Every example in examples/ runs as a user would run it (Fashion-MNIST subsets)."""

import os
import subprocess
import sys

import pytest

from keras_lottery import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(f for f in os.listdir(os.path.join(ROOT, "examples")) if f.endswith(".py"))

#: Each example runs in its own process for up to half a minute: the whole suite runs them, the
#: fast tier does not (the second assignment used to replace the first, so they ran in both).
pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_FASHION_MNIST),
    reason="needs the dataset-fashion-mnist Debian package (installed by .ci/run)")]


@pytest.mark.parametrize("example", EXAMPLES)
def test_example_runs(example, tmp_path):
    command = [sys.executable, os.path.join(ROOT, "examples", example), "--train_examples=3000",
               "--epochs=2"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ticket keeps" in done.stdout
    if example == "keras_hub_transformer.py":
        assert "BertTextClassifier: 14 kernels masked" in done.stdout
        assert sorted(os.listdir(tmp_path / "bert_ticket")) == ["masked.keras", "ticket.keras"]
    if example == "sparsify_existing_model.py":
        assert sorted(os.listdir(tmp_path / "ticket_export")) == [
            "masks.npz", "report.json", "ticket.keras"]


def test_examples_are_all_tested():
    assert EXAMPLES == ["custom_model.py", "custom_training_loop.py", "keras_hub_transformer.py",
                        "sparsify_existing_model.py", "ticket_of_trained_model.py"]
