"""Errors the user can fix: the bottom of the import graph (this module imports nothing of svd_lab).

Every error that a person can act on derives from :class:`UserError`: the command line prints its message alone
(no traceback, exit status 2) and a notebook shows the same message. Each message says what happened and what to
do next. Errors are also the built-in kind a Python caller expects (``ValueError`` for a bad value, ``KeyError``
for an unknown name, ``RuntimeError`` for a failure while running), so ``except ValueError`` keeps working.

::

    UserError
    ├── InputError (ValueError)            a bad argument: image, size, micro-conditioning, option
    │   └── UnknownNameError (KeyError)    an unknown version, checkpoint, notebook or profile name
    ├── CheckpointError                    something about weights on disk or on a hub
    │   ├── CheckpointLoadError (ValueError)      a path that cannot be loaded (svd_lab.svd.loading)
    │   ├── SgmCheckpointError (ValueError)       an sgm single file the converter cannot map (svd_lab.convert)
    │   └── ... the download errors of svd_lab.checkpoints.errors
    ├── CourseError                        running the course notebooks
    └── RunError (RuntimeError)            a run that failed for a reason the user can change (memory, disk)
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input or environment: printed as one clear message, exit status 2."""


class InputError(UserError, ValueError):
    """A bad argument value (an image, a size, a micro-conditioning number, an option)."""


class UnknownNameError(InputError, KeyError):
    """A name that is not in a table (version, checkpoint, notebook, profile); the message lists the known ones.

    Both a ``KeyError`` (a failed lookup) and a ``ValueError`` (a bad argument), printed without KeyError's quotes.
    """

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CheckpointError(UserError):
    """Something about a checkpoint (missing, unusable, not downloadable, not convertible) the user can fix."""


class CheckpointLoadError(CheckpointError, ValueError):
    """A checkpoint path that cannot be loaded; the message says why and what to do."""


class SgmCheckpointError(CheckpointError, ValueError):
    """An sgm single-file checkpoint the converter cannot map to the diffusers networks."""


class CourseError(UserError):
    """The course cannot be run as asked (missing notebook or kernel, a failed run, a baseline refused)."""


class RunError(UserError, RuntimeError):
    """A run failed for a reason the user can change (out of memory, a video that cannot be written)."""
