"""`DataError`: the one error of the data room."""


class DataError(ValueError):
    """A data set that is missing, truncated or of the wrong shape."""
