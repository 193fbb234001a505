"""kanbench: a benchmark harness for Kolmogorov-Arnold Network layers.

The harness is a handful of small modules, one job each:

- :mod:`kanbench.spec`            the ``Implementation`` spec an implementation registers with
- :mod:`kanbench.discovery`       finds specs in ``implementations/``, extra directories and entry points
- :mod:`kanbench.workload`        network widths, batch, dtype, the data pool and the loss
- :mod:`kanbench.timing`          warm-up, calibration, forward/backward samples (CPU clock, CUDA events)
- :mod:`kanbench.memory`          peak memory per phase (CUDA allocator, CPU via torch.profiler)
- :mod:`kanbench.stats`           median, IQR, MAD, geometric mean
- :mod:`kanbench.machine`         the machine fingerprint stored with every run
- :mod:`kanbench.measure`         measures one row in this process (the measurement core, no process plumbing)
- :mod:`kanbench.runner`          measures a whole run (each row in a worker process by default)
- :mod:`kanbench.worker`          the worker processes: their environment, one row in a fresh process, chunk servers
- :mod:`kanbench.results`         the results-file schema, atomic writes, loading and validation
- :mod:`kanbench.render`          markdown tables (seed format, full format)
- :mod:`kanbench.compare`         ratio + significance verdicts between two runs (the regression gate)
- :mod:`kanbench.ab`              two source trees measured interleaved on one machine
- :mod:`kanbench.cross_hardware`  machines side by side, one machine over time
- :mod:`kanbench.export`          github-action-benchmark JSON
- :mod:`kanbench.sweep`, :mod:`kanbench.plots`, :mod:`kanbench.flops`, :mod:`kanbench.accuracy`
                                  sweeps, figures, analytic FLOPs, the accuracy suite
- :mod:`kanbench.cli`             the ``kanbench`` command
"""

from kanbench.spec import Implementation  # noqa: F401
from kanbench.version import __version__  # noqa: F401
