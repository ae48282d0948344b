"""livegen: a live neural instrument."""

__version__ = "0.1.0"
