"""Saving and loading masked models, wherever their masked layers are.

A masked layer that a model's config names (a `CSDense` in a functional model) saves and
loads with Keras alone. A layer masked in place inside another layer (the query of a
`MultiHeadAttention`, a keras-hub block) is not in any config: Keras rebuilds it plain and
then cannot load its `s` and `beta`. `save_model` therefore writes, beside Keras's own
files in the `.keras` archive, `keras_lottery.json`: each masked layer's key
(`compat.keyed_layers`) and mask arguments. `load_model` rebuilds the model from its config,
masks those layers in place again, then loads every variable (`w`, `s`, `beta`, the
optimizer's slots) as Keras would.

    keras_lottery.saving.save_model(model, "masked.keras")
    model = keras_lottery.saving.load_model("masked.keras")   # class, w, s, beta: as saved

A stripped ticket (`keras_lottery.strip`) has no masked layer: `keras.saving.load_model`
loads it without keras_lottery.
"""

import json
import zipfile

import keras

from keras_lottery import compat, io_utils
from keras_lottery.layers import MaskedLayer, mask_in_place, masked_layers_by_key
from keras_lottery.layers.in_place import mask_arguments_of

#: The archive member that lists the masked layers: `{"masked_layers": {key: arguments}}`.
MANIFEST = "keras_lottery.json"


def masked_layer_arguments(model):
    """`{key: mask arguments}` of every masked layer of `model`; a ValueError if two layers
    share a key."""
    return {key: mask_arguments_of(layer) for key, layer in masked_layers_by_key(model).items()}


def save_model(model, path):
    """`model.save(path)` plus the list of its masked layers, written atomically."""
    manifest = json.dumps({"masked_layers": masked_layer_arguments(model)}, indent=1)

    def write(tmp_path):
        model.save(tmp_path)
        with zipfile.ZipFile(tmp_path, "a") as archive:
            archive.writestr(MANIFEST, manifest)

    io_utils.atomic_write(path, write, suffix=".keras")


def read_manifest(path):
    """The masked layers `save_model` listed in `path` (`{}` for any other `.keras` file)."""
    with zipfile.ZipFile(path) as archive:
        if MANIFEST not in archive.namelist():
            return {}
        return json.loads(archive.read(MANIFEST))["masked_layers"]


def remask(model, arguments):
    """Masks in place the layers of `model` named in `arguments` (`{key: mask arguments}`)
    that are not masked yet; a ValueError naming the keys `model` does not have."""
    layers = dict(compat.keyed_layers(model))
    missing = sorted(set(arguments) - set(layers))
    if missing:
        raise ValueError(f"the model has no layers {missing} to mask; its masked layers were "
                         "saved from a model of another architecture.")
    for key, layer_arguments in arguments.items():
        if not isinstance(layers[key], MaskedLayer):
            mask_in_place(layers[key], key, **layer_arguments)
    return model


def load_model(path, custom_objects=None, compile=True, safe_mode=True):
    """Loads a `.keras` file written by `save_model` (or by `model.save`): the model's own
    class, with every layer masked as it was and its variables as saved."""
    arguments = read_manifest(path)
    if not arguments:
        return keras.saving.load_model(path, custom_objects=custom_objects, compile=compile,
                                       safe_mode=safe_mode)
    return compat.load_keras_archive(path, lambda model: remask(model, arguments),
                                     custom_objects=custom_objects, compile=compile,
                                     safe_mode=safe_mode)
