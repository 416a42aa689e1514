"""nas: neural architecture search for tiny convolutional networks under a hard budget."""

__version__ = "0.1.0"
