"""``kanbench accuracy``: which KAN learns best, per parameter and per second.

Every selected implementation is trained, at a parameter budget matched to our B-spline KAN
(the ``--match params`` machinery, :mod:`kanbench.matching`), on a suite of tasks with one
protocol for every row, and reported with exactly named metrics.

Modules, one job each:

- :mod:`.tasks`     the task catalogue: the KAN paper's toy functions, scipy special functions,
                    Feynman equations, scikit-learn's bundled datasets; tiers.
- :mod:`.data`      splits (train / validation / test) and scaling fitted on the training split.
- :mod:`.metrics`   RMSE, NRMSE, accuracy, macro-F1, cross-entropy.
- :mod:`.train`     one training run: full-batch Adam or LBFGS, early stopping, the
                    validation-best checkpoint, divergence, measured time per step.
- :mod:`.tuning`    the same number of tuning trials for every row, over its own hyperparameters.
- :mod:`.suite`     the plan (tasks x implementations x budgets), parameter matching per trial,
                    selection on validation, a split per seed, shards for Slurm.
- :mod:`.summary`   per-task tables, ranks, win share and error ratio against the MLP with
                    bootstrap intervals over tasks and seeds, the widening exponent.
- :mod:`.grid_scaling` the KAN paper's scaling law: grid extension with LBFGS.
- :mod:`.records`   the typed record of one (implementation, task, seed) result.
"""
