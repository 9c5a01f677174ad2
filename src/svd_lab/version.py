"""svd-lab's version (one place; ``svd_lab.__version__`` re-exports it, run records and the CLI read it here)."""

__version__ = "0.1.0"
