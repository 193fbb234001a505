"""The suite's metrics, each named for exactly what it computes (numpy float64 in, float out).

Regression: ``rmse`` = sqrt(mean((pred - y)^2)) -- never the MSE under RMSE's name -- and
``nrmse`` = rmse / std(y) (the population std of the targets it is computed on; 1.0 is the
error of predicting their mean); ``mae`` = mean(|pred - y|) (what KANbeFair's code reports as
"RMSE": the mean over points of each point's root squared error). Classification, from logits (n, classes) and labels (n,):
``accuracy``, ``macro_f1`` (the unweighted mean over classes of F1 = 2 TP / (2 TP + FP + FN),
a class with no true and no predicted member counting 0 as scikit-learn's default) and
``cross_entropy`` (the mean negative log softmax probability of the true class, in nats).
"""

from __future__ import annotations

import numpy as np


def rmse(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.sqrt(np.mean((np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64)) ** 2)))


def mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(np.asarray(pred, dtype=np.float64) - np.asarray(y, dtype=np.float64))))


def nrmse(pred: np.ndarray, y: np.ndarray) -> float:
    std = float(np.std(np.asarray(y, dtype=np.float64)))
    return rmse(pred, y) / std if std > 0 else float("inf")


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(logits, axis=1) == labels))


def macro_f1(logits: np.ndarray, labels: np.ndarray, classes: int) -> float:
    pred = np.argmax(logits, axis=1)
    scores = []
    for c in range(classes):
        tp = np.sum((pred == c) & (labels == c))
        fp = np.sum((pred == c) & (labels != c))
        fn = np.sum((pred != c) & (labels == c))
        denom = 2 * tp + fp + fn
        scores.append(2 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-np.mean(log_probs[np.arange(len(labels)), labels]))
