"""Install the "Python (svd-lab)" Jupyter kernel.

The seed article wrote a ``kernel.json`` by hand; this does the same, idempotently. The repository keeps a
portable spec in ``kernels/svd-lab/kernel.json`` (argv starts with a bare ``python``, which Jupyter replaces by
the interpreter that launches it). The installed copy names *this* interpreter by absolute path instead, so the
kernel runs in the environment that has svd_lab whichever Jupyter starts it.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

KERNEL_NAME = "svd-lab"
DISPLAY_NAME = "Python (svd-lab)"


def kernel_spec(python: str | None = None) -> dict:
    """The kernel.json content, with ``python`` (default: this interpreter) as argv[0]."""
    spec = json.loads(resources.files("svd_lab").joinpath("data/kernel.json").read_text())
    spec["argv"][0] = python or sys.executable
    return spec


@dataclass
class KernelInstall:
    path: Path
    changed: bool

    def __str__(self) -> str:
        verb = "installed" if self.changed else "already installed (unchanged)"
        return f"kernel '{KERNEL_NAME}' ({DISPLAY_NAME}) {verb} in {self.path}"


def install_kernel(*, user: bool = False, sys_prefix: bool = False, prefix: str | None = None) -> KernelInstall:
    """Install the kernel spec. Exactly one of ``user``/``sys_prefix``/``prefix`` may be given (default: sys_prefix).

    Idempotent: when the installed kernel.json already has the same content, nothing is written.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    if sum(bool(x) for x in (user, sys_prefix, prefix)) > 1:
        raise ValueError("choose one of --user, --sys-prefix or --prefix")
    if not (user or prefix):
        sys_prefix = True
    spec = kernel_spec()
    ksm = KernelSpecManager()
    # Where would it go? Compare before writing so repeated installs are no-ops.
    if user:
        target_root = Path(ksm.user_kernel_dir)
    else:
        from jupyter_core.paths import SYSTEM_JUPYTER_PATH  # noqa: F401  (documented location)

        base = Path(prefix) if prefix else Path(sys.prefix)
        target_root = base / "share" / "jupyter" / "kernels"
    target = target_root / KERNEL_NAME
    existing = target / "kernel.json"
    if existing.is_file():
        try:
            if json.loads(existing.read_text()) == spec:
                return KernelInstall(target, changed=False)
        except (OSError, json.JSONDecodeError):
            pass
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / KERNEL_NAME
        src.mkdir()
        (src / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n")
        installed = ksm.install_kernel_spec(
            str(src), kernel_name=KERNEL_NAME, user=user,
            prefix=(prefix if prefix else (sys.prefix if sys_prefix else None))
        )
    return KernelInstall(Path(installed), changed=True)


def installed_kernel() -> Path | None:
    """Folder of the installed svd-lab kernel spec visible to Jupyter from here, or None."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return None
    specs = KernelSpecManager().find_kernel_specs()
    return Path(specs[KERNEL_NAME]) if KERNEL_NAME in specs else None


def remove_kernel() -> bool:
    path = installed_kernel()
    if path is None:
        return False
    shutil.rmtree(path)
    return True
