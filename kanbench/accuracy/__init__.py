"""``kanbench accuracy``: which KAN learns best, per parameter and per second.

Every selected implementation is trained, at a parameter budget matched to our B-spline KAN
(the ``--match params`` machinery, :mod:`kanbench.matching`), on a suite of tasks with one
protocol for every row, and reported with exactly named metrics.

Modules, one job each:

- :mod:`.tasks`     the task catalogue: the KAN paper's toy functions, scipy special functions,
                    Feynman equations, scikit-learn's bundled datasets; tiers.
- :mod:`.data`      splits (train / validation / test) and scaling fitted on the training split.
- :mod:`.metrics`   RMSE, NRMSE, accuracy, macro-F1, cross-entropy.
- :mod:`.train`     one training run: full-batch Adam or LBFGS, validation-best checkpoint,
                    divergence, measured time per step.
- :mod:`.suite`     the plan (tasks x implementations x seeds x learning rates), parameter
                    matching, learning-rate selection on validation, shards for Slurm.
- :mod:`.summary`   per-task tables, ranks, win rate against the MLP with its interval,
                    error-versus-parameters scaling exponents.
- :mod:`.records`   the typed record of one (implementation, task, seed) result.
"""
