from __future__ import annotations

from svd_lab.kernel import DISPLAY_NAME, KERNEL_NAME


def register(sub) -> None:
    p = sub.add_parser("kernel", help=f"install or remove the '{DISPLAY_NAME}' Jupyter kernel")
    ks = p.add_subparsers(dest="kernel_command", metavar="ACTION", required=True)
    inst = ks.add_parser("install", help="install the kernel (idempotent; default --sys-prefix)")
    where = inst.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="into your user Jupyter folder")
    where.add_argument("--sys-prefix", action="store_true", help="into this environment (venv/conda) [default]")
    where.add_argument("--prefix", metavar="P", help="into P/share/jupyter/kernels")
    inst.set_defaults(func=install)
    rm = ks.add_parser("remove", help="remove the installed kernel spec")
    rm.set_defaults(func=remove)


def install(args) -> int:
    from svd_lab.kernel import install_kernel

    print(install_kernel(user=args.user, sys_prefix=args.sys_prefix, prefix=args.prefix))
    return 0


def remove(args) -> int:
    from svd_lab.kernel import remove_kernel

    print(f"kernel '{KERNEL_NAME}' removed" if remove_kernel() else f"kernel '{KERNEL_NAME}' was not installed")
    return 0
