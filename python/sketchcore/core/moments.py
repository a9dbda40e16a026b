"""Per-feature moments streamed and merged like sketches."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["RunningMoments"]


class RunningMoments:
    """Streamed per-feature count, mean and sum of squared deviations; ``+`` merges
    (Chan et al.'s parallel update), so standardisation statistics come from
    the same single pass as a sketch."""

    def __init__(self, dim: int, count: float = 0.0, mean: Any = None, m2: Any = None) -> None:
        self.count = float(count)
        self.mean = np.zeros(dim) if mean is None else np.asarray(mean, dtype=np.float64)
        self.m2 = np.zeros(dim) if m2 is None else np.asarray(m2, dtype=np.float64)

    def update(self, X: np.ndarray) -> RunningMoments:
        if len(X):
            X = np.asarray(X, dtype=np.float64)
            other = RunningMoments(X.shape[1], len(X), X.mean(0), ((X - X.mean(0)) ** 2).sum(0))
            merged = self + other
            self.count, self.mean, self.m2 = merged.count, merged.mean, merged.m2
        return self

    def __add__(self, other: RunningMoments) -> RunningMoments:
        n = self.count + other.count
        if n == 0:
            return RunningMoments(len(self.mean))
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / n)
        m2 = self.m2 + other.m2 + delta**2 * (self.count * other.count / n)
        return RunningMoments(len(mean), n, mean, m2)

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation (1 where a feature is constant)."""
        var = self.m2 / max(self.count, 1.0)
        std = np.sqrt(var)
        return np.where(std > 0, std, 1.0)

    def to_dict(self) -> dict:
        return {"count": self.count, "mean": self.mean.tolist(), "m2": self.m2.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> RunningMoments:
        return cls(len(d["mean"]), d["count"], d["mean"], d["m2"])
