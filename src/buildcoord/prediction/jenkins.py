"""The estimator we are compared with: Jenkins' mean of the last three successful builds."""

from __future__ import annotations

from collections import deque

from buildcoord.prediction.predictor import FinishedBuild

JENKINS_BUILDS = 3


class JenkinsEstimator:
    """Mean duration of the last three successful builds of the same build key."""

    def __init__(self) -> None:
        self._last: dict[str, deque[float]] = {}

    def observe(self, build: FinishedBuild) -> None:
        """Record a finished build; only successful ones count."""
        if build.succeeded:
            self._last.setdefault(build.key, deque(maxlen=JENKINS_BUILDS)).append(build.duration)

    def predict(self, key: str) -> float | None:
        """The mean of up to the last three successes of ``key``; None before the first."""
        last = self._last.get(key)
        if not last:
            return None
        return sum(last) / len(last)
