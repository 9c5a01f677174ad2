from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("doctor", help="check this machine: Python, torch, GPU, ffmpeg, kernel, checkpoints, "
                                      "download sources; advice")
    p.add_argument("--checkpoints", metavar="DIR", help="checkpoints folder to inspect (default: ./checkpoints)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--no-network", action="store_true",
                   help="do not probe the Hugging Face hub and ModelScope (a few seconds where they are unreachable)")
    p.set_defaults(func=run)


def run(args) -> int:
    from svd_lab.diagnostics import run_doctor

    report = run_doctor(checkpoints_dir=args.checkpoints, check_network=not args.no_network)
    print(json.dumps(report.to_dict(), indent=1) if args.json else report)
    return 0 if report.ok else 1
