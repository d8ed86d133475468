"""Every flagfile parses and dry-runs (model, data, callbacks, a couple of steps of each phase)."""

import glob
import os

import numpy as np
import pytest
from conftest import write_idx

from apps import search as search_app
from keras_lottery import data, search
from keras_lottery.search import config as search_config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FLAGFILES = sorted(glob.glob(os.path.join(ROOT, "apps", "flags", "*.cfg")))


@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """Tiny CIFAR-10 binary batches (1 label byte + 3072 CHW pixel bytes per record)."""
    directory = tmp_path_factory.mktemp("cifar") / "cifar-10-batches-bin"
    directory.mkdir()
    rng = np.random.RandomState(0)

    def write(name, count):
        records = rng.randint(0, 256, (count, data.CIFAR10_RECORD)).astype(np.uint8)
        records[:, 0] = rng.randint(0, 10, count)
        (directory / name).write_bytes(records.tobytes())

    for name in data.CIFAR10_TRAIN_FILES:
        write(name, 128)
    write(data.CIFAR10_TEST_FILE, 300)
    return str(directory.parent)


@pytest.fixture(scope="module")
def mnist_dir(tmp_path_factory):
    directory = tmp_path_factory.mktemp("fashion")
    rng = np.random.RandomState(0)
    for stem, count in (("train", 600), ("t10k", 300)):
        write_idx(str(directory / f"{stem}-images-idx3-ubyte.gz"), rng.randint(0, 256, (count, 28, 28)))
        write_idx(str(directory / f"{stem}-labels-idx1-ubyte.gz"), rng.randint(0, 10, count))
    return str(directory)


def _parse(argv):
    flags = search_app.FLAGS
    flags.unparse_flags()
    flags(["search"] + argv)
    try:
        return search_app.config_from_flags(flags)
    finally:
        flags.unparse_flags()


def test_every_paper_setting_has_a_flagfile_and_a_fashion_counterpart():
    names = {os.path.basename(path)[:-4] for path in FLAGFILES}
    for setting in ("cs_conv6", "imp_conv6", "iss_conv6", "cs_supermask_conv6",
                    "ss_supermask_conv6", "cs_resnet18", "imp_resnet18"):
        assert setting in names and f"{setting}_fashion" in names


def test_flagfiles_carry_the_papers_numbers():
    resnet = _parse([f"--flagfile={ROOT}/apps/flags/cs_resnet18.cfg"])
    assert (resnet.model, resnet.batch_size, resnet.epochs) == ("resnet18", 128, 85)
    assert resnet.lr_decay_epochs == (56, 71) and resnet.weight_decay == 1e-4
    assert resnet.rounds == 5 and resnet.rewind_epoch == -1 and resnet.ticket_epoch == 2
    imp = _parse([f"--flagfile={ROOT}/apps/flags/imp_conv6.cfg"])
    assert (imp.prune_fraction_conv, imp.prune_fraction_dense) == (0.15, 0.2)
    assert (imp.rounds, imp.epochs, imp.batch_size, imp.learning_rate) == (30, 40, 60, 3e-4)
    iss = _parse([f"--flagfile={ROOT}/apps/flags/iss_conv6.cfg"])
    assert (iss.mask_learning_rate, iss.mask_init, iss.mask_penalty) == (20.0, 1.0, 1e-8)
    fashion = _parse([f"--flagfile={ROOT}/apps/flags/imp_resnet18_fashion.cfg"])
    assert fashion.dataset == "fashion_mnist" and fashion.method == "imp"
    assert fashion.prune_scope == "global" and fashion.model == "resnet18"


#: Dry runs of the big models (ResNet, Conv-6) build and step their whole graph: slow tier.
HEAVY = ("resnet18", "conv6", "transformer", "mobilenet", "gpt")


def _run_further_elsewhere(flagfile):
    """Why another test already steps `flagfile`'s graph further than a dry run would (its dry
    run would only repeat that), or None: the CIFAR-10 originals of the `*_fashion` flagfiles
    (the same model and method on the data this machine has; the CIFAR-10 reader is
    test_data's), and the text flagfiles that test_text and test_characters run end to end."""
    name = os.path.basename(flagfile)[:-4]
    if os.path.exists(os.path.join(ROOT, "apps", "flags", f"{name}_fashion.cfg")):
        return f"{name}_fashion.cfg dry-runs the same model and method"
    if name in ("cs_transformer_kjv", "imp_transformer_kjv", "cs_unit_gpt_kjv"):
        return "run end to end on a slice of text (test_text, test_characters)"
    return None


@pytest.mark.parametrize("flagfile", [
    pytest.param(f, marks=pytest.mark.slow) if any(h in f for h in HEAVY) else f
    for f in FLAGFILES], ids=lambda p: os.path.basename(p))
def test_flagfile_dry_runs(flagfile, cifar_dir, mnist_dir, tmp_path):
    """Every flagfile parses and validates; those no other test runs further dry-run."""
    config = _parse([f"--flagfile={flagfile}", f"--output_dir={tmp_path / 'out'}",
                     "--validation_examples=256", "--verbose=0", "--dry_run"])
    config = config.__class__(**{**config.__dict__,
                                 "data_dir": cifar_dir if config.dataset == "cifar10" else mnist_dir})
    config.validate()
    if _run_further_elsewhere(flagfile):
        return
    results = search.run(config)
    (record,) = results["rounds"]
    assert record["epochs"] == 1 and 0 <= record["remaining"] <= 1
    assert not os.path.exists(tmp_path / "out"), "a dry run writes nothing"


def test_the_flagfiles_that_skip_their_dry_run_are_run_further_elsewhere():
    skipped = {os.path.basename(f) for f in FLAGFILES if _run_further_elsewhere(f)}
    assert {"cs_resnet18.cfg", "cs_unit_gpt_kjv.cfg", "imp_conv6.cfg"} <= skipped
    assert not {os.path.basename(f) for f in FLAGFILES if "_fashion" in f} & skipped
    tests = os.path.dirname(os.path.abspath(__file__))
    text = open(os.path.join(tests, "test_text.py")).read() + open(
        os.path.join(tests, "test_characters.py")).read()
    for name in ("cs_transformer_kjv.cfg", "imp_transformer_kjv.cfg", "cs_unit_gpt_kjv.cfg"):
        assert f'"{name}"' in text, f"no test runs {name} end to end"


def test_every_setting_has_one_help_text_and_a_row_in_the_docs():
    """`config.HELP` is the one source of the flags' help; the guide and the README list
    every flag."""
    from keras_lottery.search.config import HELP, SearchConfig

    assert set(HELP) == set(SearchConfig.field_names())
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    guide = open(os.path.join(root, "docs", "guide.md")).read()
    readme = open(os.path.join(root, "README.md")).read()
    for name in SearchConfig.field_names():
        assert f"`--{name}`" in guide, f"docs/guide.md has no row for --{name}"
        assert f"`--{name}`" in readme, f"README.md's flag table lacks --{name}"


def test_every_reproduction_command_is_a_valid_setting():
    """`benchmarks.reproduce` runs these settings for hours: each parses and validates here,
    and the scaled ones say what they scale."""
    from benchmarks import reproduce

    for group, settings in reproduce.GROUPS.items():
        for _name, flags in settings.items():
            argv = [f.replace("apps/flags", f"{ROOT}/apps/flags") for f in flags]
            config = _parse(argv)
            config.validate()
            assert group in reproduce.FIGURE_DIRS, group
    conv = _parse([f.replace("apps/flags", f"{ROOT}/apps/flags")
                   for f in reproduce.GROUPS["conv"]["imp"]])
    assert (conv.model, conv.train_examples, conv.epochs, conv.ticket_epochs) == ("conv2", 5000, 6, 6)
    assert (conv.prune_fraction_conv, conv.rewind_epoch) == (0.15, 0)
    reference = _parse([f.replace("apps/flags", f"{ROOT}/apps/flags")
                        for f in reproduce.GROUPS["lenet"]["imp_reference"]])
    assert (reference.epochs, reference.rewind_epoch, reference.ticket_epochs) == (40, 0, 40)


def test_flags_the_method_does_not_read_are_named_in_one_warning(capsys):
    config = _parse(["--method=imp", "--final_temperature=100", "--mask_penalty=1e-5",
                     "--prune_fraction=0.3"])
    assert config.prune_fraction == 0.3
    lines = [l for l in capsys.readouterr().err.splitlines() if l.startswith("warning:")]
    assert lines == ["warning: --method=imp does not use --mask_penalty, --final_temperature; "
                     "ignored."]
    _parse(["--method=cs", "--final_temperature=100", "--mask_penalty=1e-5"])
    assert "warning:" not in capsys.readouterr().err


def test_nomask_scaling_is_honoured_with_init_from(tmp_path):
    path = str(tmp_path / "model.keras")
    assert _parse([f"--init_from={path}"]).mask_scaling  # CS starts at the model's outputs
    config = _parse([f"--init_from={path}", "--nomask_scaling"])
    assert not config.mask_scaling
    # ... and what the run recorded is what a resume reads back.
    assert not type(config).from_dict(config.to_dict()).mask_scaling


def test_search_config_is_declared_field_by_field_and_methods_get_their_own_settings():
    import dataclasses

    from keras_lottery import methods
    from keras_lottery.search.config import SETTINGS

    fields = {f.name: f for f in dataclasses.fields(search_config.SearchConfig)}
    assert set(fields) == set(SETTINGS)  # each setting a field, written out in config.py
    for name, field in fields.items():
        assert field.default == SETTINGS[name].default  # the one default, the setting's
        assert field.type in (type(field.default).__name__, type(field.default))
    config = search_config.SearchConfig(method="imp", prune_fraction=0.3)
    own = methods.get("imp").settings_of(config)
    assert {f.name for f in dataclasses.fields(own)} == {
        s.name for s in methods.get("imp").settings}
    assert own.prune_fraction == 0.3 and not hasattr(own, "mask_penalty")
    with pytest.raises(dataclasses.FrozenInstanceError):
        own.prune_fraction = 0.5
    assert "mask_penalty" in {s.name for s in methods.get("cs").settings}
