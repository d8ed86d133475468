"""`ShrinkError`: what `shrink` and its plan raise for a model they cannot take units out of."""


class ShrinkError(ValueError):
    """A model `shrink` cannot take units out of; the message names the layer."""
