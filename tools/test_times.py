"""The README's table of test times: seconds per test file (from pytest's JUnit XML) and per notebook execution
(from the course runs' log), as Markdown.

    make test                              # writes outputs/test-report.xml and outputs/test-course/<pid>/runs.jsonl
    .venv/bin/python tools/test_times.py   # the newest of each
"""

from __future__ import annotations

import argparse
import json
import sys
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def file_seconds(report: Path) -> dict[str, float]:
    """test file -> seconds, summed over its test cases (setup and teardown included, as pytest reports them)."""
    totals: dict[str, float] = defaultdict(float)
    for case in ET.parse(report).getroot().iter("testcase"):
        name = case.get("classname", "").split(".")
        path = "/".join(p for p in name if not p[:1].isupper())        # drop a test class name, keep the module
        totals[f"{path}.py"] += float(case.get("time", 0))
    return dict(totals)


def notebook_seconds(runs: Path) -> list[dict]:
    return [json.loads(line) for line in runs.read_text().splitlines() if line.strip()]


def newest(pattern: str) -> Path | None:
    found = sorted(REPO.glob(pattern), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--report", type=Path, default=None, help="pytest JUnit XML (default: outputs/test-report.xml)")
    parser.add_argument("--runs", type=Path, default=None, help="course runs log (default: the newest runs.jsonl)")
    args = parser.parse_args(argv)
    report = args.report or REPO / "outputs" / "test-report.xml"
    runs = args.runs or newest("outputs/test-course/*/runs.jsonl")
    if not report.is_file():
        print(f"no {report}: run `make test` first", file=sys.stderr)
        return 2
    files = file_seconds(report)
    total = sum(files.values())
    print("| test file | seconds |\n|---|---|")
    for name, seconds in sorted(files.items(), key=lambda kv: -kv[1]):
        print(f"| `{name}` | {seconds:.0f} |")
    print(f"| all ({sum(1 for _ in ET.parse(report).getroot().iter('testcase'))} tests) | {total:.0f} |")
    if runs is not None:
        print("\n| notebook execution | parameters | seconds |\n|---|---|---|")
        for run in notebook_seconds(runs):
            params = ", ".join(f"{k}={v}" for k, v in run["parameters"].items()) or "defaults"
            print(f"| {run['notebook']} | {params} | {run['seconds']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
