"""Grade a student's notebook: ``python -m emformer_edu.grade SUBMISSION.ipynb [--timeout S] [--json report.json]``.

Runs the notebook in a clean kernel, re-checks every exercise of its chapter there, prints a score
table and (with ``--json``) writes the report. Exit code 0 whenever a report was made, however bad the
submission (errors, timeouts, no answers); 2 only when the input is not a gradable notebook.
The work is done by :mod:`emformer_edu.teaching.grader`.
"""
import argparse
import json
import sys
from pathlib import Path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m emformer_edu.grade", description=__doc__.split("\n\n")[0])
    parser.add_argument("submission", help="the student's .ipynb")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per cell (default 120)")
    parser.add_argument("--total-timeout", type=float, default=1800.0,
                        help="seconds for all the student's cells together (default 1800)")
    parser.add_argument("--json", metavar="REPORT", help="write the JSON report here")
    parser.add_argument("--chapter", help="grade as chapter NN (default: from the notebook's check calls)")
    parser.add_argument("--cwd", help="working directory of the kernel (default: the course's notebooks/)")
    args = parser.parse_args(argv)
    if args.timeout <= 0 or args.total_timeout <= 0:
        parser.error("timeouts must be positive")

    from .teaching.grader import GradingInputError, format_table, grade  # after argparse: --help stays fast
    try:
        report = grade(args.submission, cell_timeout=args.timeout, total_timeout=args.total_timeout,
                       chapter=args.chapter, cwd=args.cwd)
    except GradingInputError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(report))
    if args.json:
        Path(args.json).write_text(json.dumps(report.to_json(), indent=2) + "\n")
        print(f"report written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
