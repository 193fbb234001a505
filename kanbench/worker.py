"""Worker process entry point: ``python -m kanbench.worker JOB.json RECORD.json``.

Measures one row (see :func:`kanbench.runner.measure_row`) and writes its
record as JSON. Started by :func:`kanbench.runner.measure_row_isolated`.
"""

from __future__ import annotations

import json
import sys


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m kanbench.worker JOB.json RECORD.json", file=sys.stderr)
        return 2
    from kanbench import results
    from kanbench.runner import RowJob, measure_row

    with open(argv[0]) as f:
        job = RowJob.from_dict(json.load(f))
    record = measure_row(job, checkpoint=lambda partial: results.write_atomic(argv[1], partial))
    results.write_atomic(argv[1], record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
