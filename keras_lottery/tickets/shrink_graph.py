"""The graph `shrink` walks: a Sequential or functional model's layers (and the operations
between them, such as the padding mask an `Embedding(mask_zero=True)` computes) in the order
they run, each with the names of its inputs."""

import keras

from keras_lottery.tickets.shrink_error import ShrinkError


def inputs_of(model):
    """`[(layer, [names of its input layers])]` in the order the model runs them."""
    if isinstance(model, keras.Sequential):
        names = [layer.name for layer in model.layers]
        return [(layer, names[i - 1:i]) for i, layer in enumerate(model.layers)]
    # Operations between layers (the padding mask an Embedding(mask_zero=True) computes) are
    # in the graph too: they pass when their inputs keep every channel.
    by_name = {operation.name: operation for operation in model.operations}
    entries = model.get_config().get("layers")
    if entries is None:  # a keras-hub Task or Backbone: its config holds its arguments
        raise ShrinkError(f"shrink follows functional graphs in their config; "
                          f"{type(model).__name__}'s config holds its arguments instead "
                          "(strip the ticket instead).")
    graph, later = [], []
    for entry in entries:
        layer, nodes = by_name[entry["config"]["name"]], entry["inbound_nodes"]
        graph.append((layer, _history_names(nodes[:1])))
        # A shared layer's later calls (a tied output embedding) run once their inputs have.
        later += [(layer, _history_names(node)) for node in nodes[1:]]
    for layer, names in later:
        last = max((i for i, (known, _) in enumerate(graph) if known.name in names), default=-1)
        graph.insert(last + 1, (layer, names))
    return graph


def _history_names(value):
    """The layer names in the `keras_history` of every tensor a config's `inbound_nodes` hold."""
    if isinstance(value, dict) and "keras_history" in value.get("config", {}):
        return [value["config"]["keras_history"][0]]
    items = value.values() if isinstance(value, dict) else (
        value if isinstance(value, (list, tuple)) else [])
    return [name for item in items for name in _history_names(item)]
