"""keras_lottery: lottery tickets in Keras 3 with Continuous Sparsification.

    from keras_lottery import layers, callbacks, tickets
    model = keras.Sequential([layers.CSDense(300, activation="relu"), layers.CSDense(10)])
    model.fit(x, y, epochs=10, callbacks=[callbacks.TemperatureCallback(200),
                                          callbacks.RoundManager()])
    masks = tickets.extract_masks(model)
"""

from keras_lottery import callbacks, data, layers, masking, models, tickets, weights
from keras_lottery.callbacks import MaskSummaries, RoundManager, TemperatureCallback
from keras_lottery.config import ConfigError, SearchConfig
from keras_lottery.layers import CSConv2D, CSDense

__version__ = "0.1.0"

__all__ = [
    "CSConv2D", "CSDense", "ConfigError", "MaskSummaries", "RoundManager", "SearchConfig",
    "TemperatureCallback", "callbacks", "data", "layers", "masking", "models", "tickets",
    "weights",
]
