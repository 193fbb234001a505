"""Worker process entry points.

``python -m kanbench.worker JOB.json RECORD.json``
    Measure one row (:func:`kanbench.runner.measure_row`) and write its record as JSON.
    Started by :func:`kanbench.runner.measure_row_isolated`.

``python -m kanbench.worker --serve JOB.json``
    Build the row's model, warm it up, then measure chunks on request: the A/B mode
    (:mod:`kanbench.ab`) keeps one such worker per source tree and alternates between
    them. Requests are JSON lines on stdin; replies are JSON lines on the file
    descriptor named by ``KANBENCH_RESULT_FD`` (stdout stays free for whatever the
    implementation prints).
"""

from __future__ import annotations

import json
import os
import sys


def serve(job_path: str) -> int:
    from kanbench import memory, timing
    from kanbench.runner import RowFailed, RowJob, classify_failure, empty_record, open_row

    out = os.fdopen(int(os.environ["KANBENCH_RESULT_FD"]), "w", buffering=1)

    def reply(message: dict) -> None:
        out.write(json.dumps(message) + "\n")
        out.flush()

    with open(job_path) as f:
        job = RowJob.from_dict(json.load(f))
    record = empty_record(job)
    try:
        row = open_row(job, record)
        clock = timing.make_clock(row.device)
        record["warmup_iterations"] = timing.warm_up(row.model, row.pool, clock, job.timing)
    except RowFailed:
        reply({"ready": False, "record": record})
        return 0
    except Exception as exc:
        reply({"ready": False, "record": classify_failure(record, exc, "warm-up", job)})
        return 0
    reply({"ready": True, "record": record})
    for line in sys.stdin:
        request = json.loads(line)
        cmd = request.get("cmd")
        if cmd == "quit":
            break
        try:
            if cmd == "chunk":
                samples = timing.Samples()
                timing.collect(
                    row.model, row.pool, clock, samples,
                    float(request.get("min_time", 0.2)), int(request.get("min_samples", 5)),
                    int(request.get("max_samples", 100000)),
                )
                reply({"forward_ms": samples.forward_ms, "backward_ms": samples.backward_ms})
            elif cmd == "memory":
                reply({"memory": memory.phase_peaks(row.model, row.pool, row.device)})
            else:
                reply({"error": f"unknown command {cmd!r}"})
        except Exception as exc:
            reply({"error": classify_failure(dict(record), exc, cmd or "?", job)["error"]})
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "--serve":
        return serve(argv[1])
    if len(argv) != 2:
        print("usage: python -m kanbench.worker JOB.json RECORD.json | --serve JOB.json", file=sys.stderr)
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
