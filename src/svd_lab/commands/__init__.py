"""Subcommands of the ``svd-lab`` command line (see :mod:`svd_lab.cli`)."""
