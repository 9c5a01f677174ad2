"""``svd-lab course``: list, run and regression-check the course notebooks."""

from __future__ import annotations

import json
import sys

from svd_lab.errors import UserError

EDITIONS = ("en", "zh-CN")  # svd_lab.notebook_runs.EDITIONS (not imported: `svd-lab --help` stays fast)


def register(sub) -> None:
    p = sub.add_parser("course", help="run the course notebooks with papermill; compare their records with baselines")
    cs = p.add_subparsers(dest="course_command", metavar="ACTION", required=True)

    ls = cs.add_parser("list", help="the course's notebooks, in order")
    ls.add_argument("--edition", choices=EDITIONS, default="en", help="en (default) or zh-CN (简体中文)")
    ls.set_defaults(func=list_notebooks)

    for name, helptext in (
        ("run", "execute the course into outputs/course/ and print a table: notebook, status, seconds, artifacts"),
        ("regress", "execute the course, then compare its records with tests/baselines/ (CPU profiles)"),
    ):
        r = cs.add_parser(name, help=helptext)
        r.add_argument("notebooks", nargs="*", metavar="NOTEBOOK",
                       help="only these (file name, stem or number such as 02); default: all of them")
        r.add_argument("--output", metavar="DIR", help="output folder (default: outputs/course)")
        r.add_argument("--profile", help="profile parameter for every notebook (default: each notebook's 'auto')")
        r.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                       help="extra notebook parameter; VALUE is read as JSON when it parses (e.g. -p steps=5)")
        r.add_argument("--timeout", type=int, default=None, metavar="S", help="per-cell timeout in seconds")
        r.add_argument("--edition", choices=EDITIONS, default="en",
                       help="en (default) or zh-CN: the Simplified Chinese notebooks (same code, same records)")
        if name == "regress":
            r.add_argument("--update", action="store_true",
                           help="rewrite the baselines from this run (review the diff before committing)")
        r.set_defaults(func=run if name == "run" else regress)


def _parameters(args) -> dict:
    params = {}
    if args.profile:
        params["profile"] = args.profile
    for item in args.parameter:
        if "=" not in item:
            raise UserError(f"parameter {item!r}: write NAME=VALUE (e.g. -p num_steps=5)")
        key, raw = item.split("=", 1)
        try:
            params[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            params[key.strip()] = raw
    return params


def list_notebooks(args) -> int:
    from svd_lab.notebook_runs import CourseError, course_notebooks

    try:
        for path in course_notebooks(edition=args.edition):
            print(path)
    except CourseError as exc:
        raise UserError(str(exc)) from None
    return 0


def _execute(args):
    from svd_lab.notebook_runs import DEFAULT_CELL_TIMEOUT, CourseError, run_course

    def progress(result):
        print(f"  {result.notebook:<28} {result.status:<7} {result.seconds:6.1f} s", file=sys.stderr, flush=True)

    print("executing the course with papermill ...", file=sys.stderr, flush=True)
    try:
        return run_course(args.output, args.notebooks or None, _parameters(args),
                          cell_timeout=args.timeout or DEFAULT_CELL_TIMEOUT, on_result=progress,
                          edition=args.edition)
    except CourseError as exc:
        raise UserError(str(exc)) from None


def run(args) -> int:
    from svd_lab.notebook_runs import course_table

    results = _execute(args)
    print(course_table(results))
    if results:
        print(f"\nexecuted notebooks and their files: {results[0].output.parent}")
    return 0 if all(r.status == "ok" for r in results) else 1


def regress(args) -> int:
    from svd_lab.baselines import (
        BASELINE_PROFILES,
        regression_failures,
        regression_rows,
        regression_table,
        write_baseline,
    )
    from svd_lab.notebook_runs import CourseError, course_table

    results = _execute(args)
    print(course_table(results))
    print()
    if args.update:
        for r in results:
            if r.status == "ok" and r.profile in BASELINE_PROFILES:
                try:
                    print(f"baseline written: {write_baseline(r)}")
                except CourseError as exc:
                    raise UserError(str(exc)) from None
            else:
                print(f"baseline NOT written for {r.notebook}: "
                      + (f"it failed ({r.error})" if r.status != "ok" else f"profile {r.profile!r} has no baseline"))
        return 0 if all(r.status == "ok" for r in results) else 1
    rows = [row for r in results for row in regression_rows(r)]
    print(regression_table(rows))
    failures = regression_failures(rows)
    if failures:
        print(f"\n{len(failures)} value(s) moved:\n" + "\n".join(failures))
        print("\nIf the change is intended: make regress UPDATE=1, then review the diff of tests/baselines/.")
        return 1
    print(f"\nall {sum(1 for row in rows if row.verdict == 'ok')} recorded values match their baselines")
    return 0
