"""fastbp: fast backpropagation for multilayer perceptrons on the CPU."""
from ._version import __version__

__all__ = ["__version__"]
