"""The one exception type the CLI turns into a one-line message and exit code 2."""


class NasError(Exception):
    """A user-facing error: bad input, missing data, an impossible spec or budget."""
