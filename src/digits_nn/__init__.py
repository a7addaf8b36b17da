"""digits-nn: a from-scratch numpy network on scikit-learn's 8x8 digits."""

__version__ = "0.1.0"
