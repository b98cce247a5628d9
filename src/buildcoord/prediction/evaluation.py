"""Replay a history chronologically and score our predictor and Jenkins' on the same rows.

The protocol (../shared/data/durations/README.md): walk rows in ``started_at`` order; every
successful row whose job already has at least three earlier successful rows is scored, with
predictions that use only rows that started strictly before it. Rows with the same
``started_at`` are all predicted before any of them is recorded, so they never see each other.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import groupby

from buildcoord.prediction.history_file import History, HistoryRow
from buildcoord.prediction.jenkins import JenkinsEstimator
from buildcoord.prediction.predictor import (
    SUCCESS_RESULTS,
    Prediction,
    Predictor,
    PredictorSettings,
)
from buildcoord.prediction.wait import WaitAccuracy, score_waits

MIN_EARLIER_SUCCESSES = 3
PROGRESS_EVERY = 500

Progress = Callable[[int, int], None]
"""Called with (rows replayed, rows in all) as the replay goes."""


@dataclass(frozen=True, slots=True)
class ScoredRow:
    """One scored row: what happened and what each estimator said before it started."""

    row: HistoryRow
    prediction: Prediction
    jenkins: float


@dataclass(frozen=True, slots=True)
class Accuracy:
    """Error figures of one estimator over a set of rows (fractions, not percent)."""

    rows: int
    mape: float
    mdape: float
    coverage: float | None
    """Share of actual durations inside p10-p90; None for a point estimator."""
    band_width: float | None
    """Median of (p90 - p10) / p50."""


@dataclass(frozen=True, slots=True)
class Comparison:
    """Ours and Jenkins' on the same rows."""

    ours: Accuracy
    jenkins: Accuracy


@dataclass(frozen=True, slots=True)
class Goal:
    """One line of the accuracy goal and whether it was met."""

    name: str
    target: str
    measured: str
    passed: bool


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The whole result of replaying a file."""

    history: History
    scored: list[ScoredRow]
    overall: Comparison
    projects: dict[str, Comparison]
    goals: list[Goal]
    wait: WaitAccuracy | None = None
    """The queue-wait forecast's accuracy, when the file records queue times."""

    @property
    def passed(self) -> bool:
        """Whether every goal was met."""
        return all(goal.passed for goal in self.goals)


def replay(
    rows: Sequence[HistoryRow],
    settings: PredictorSettings | None = None,
    progress: Progress | None = None,
) -> list[ScoredRow]:
    """Walk rows in start order and score every eligible success, never looking ahead."""
    ordered = sorted(rows, key=lambda row: row.started_at)  # stable: ties keep file order
    predictor = Predictor(settings)
    jenkins = JenkinsEstimator()
    successes: Counter[str] = Counter()
    scored: list[ScoredRow] = []
    done = 0
    for _, same_start in groupby(ordered, key=lambda row: row.started_at):
        group = list(same_start)
        for row in group:
            if row.result in SUCCESS_RESULTS and successes[row.key] >= MIN_EARLIER_SUCCESSES:
                prediction = predictor.predict(row.key, row.branch, row.server, row.trigger)
                estimate = jenkins.predict(row.key)
                # Three earlier successes guarantee both estimators have an answer.
                assert prediction is not None
                assert estimate is not None
                scored.append(ScoredRow(row, prediction, estimate))
        for row in group:
            build = row.as_build()
            predictor.observe(build)
            jenkins.observe(build)
            if build.succeeded:
                successes[row.key] += 1
        if progress is not None and done // PROGRESS_EVERY != (done + len(group)) // PROGRESS_EVERY:
            progress(done + len(group), len(ordered))
        done += len(group)
    if progress is not None:
        progress(done, len(ordered))
    return scored


def accuracy(scored: Sequence[ScoredRow], *, jenkins: bool = False) -> Accuracy:
    """MAPE, MdAPE, coverage and band width of ours (or of Jenkins') over ``scored``."""
    if not scored:
        return Accuracy(0, math.nan, math.nan, None, None)
    errors = []
    for item in scored:
        predicted = item.jenkins if jenkins else item.prediction.p50
        errors.append(abs(predicted - item.row.duration) / item.row.duration)
    if jenkins:
        mape, mdape = statistics.fmean(errors), statistics.median(errors)
        return Accuracy(len(scored), mape, mdape, None, None)
    inside = sum(
        1 for item in scored if item.prediction.p10 <= item.row.duration <= item.prediction.p90
    )
    widths = [(item.prediction.p90 - item.prediction.p10) / item.prediction.p50 for item in scored]
    return Accuracy(
        len(scored),
        statistics.fmean(errors),
        statistics.median(errors),
        inside / len(scored),
        statistics.median(widths),
    )


def compare(scored: Sequence[ScoredRow]) -> Comparison:
    """Ours and Jenkins' accuracy on the same rows."""
    return Comparison(accuracy(scored), accuracy(scored, jenkins=True))


# The accuracy goals (issue 17), meant for any history, not only the shipped one: MAPE at
# least 25 % below Jenkins' on the same rows, below Jenkins' on every project, and a p10-p90
# band that holds 78-85 % of actual durations.
GOAL_GAIN_OVER_JENKINS = 0.25
GOAL_COVERAGE = (0.78, 0.85)


def _percent(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value * 100:.{digits}f} %"


def goals(overall: Comparison, projects: dict[str, Comparison]) -> list[Goal]:
    """Check the accuracy goal: MAPE against Jenkins overall and per project, coverage."""
    ours = overall.ours
    low, high = GOAL_COVERAGE
    coverage = ours.coverage if ours.coverage is not None else math.nan
    ceiling = overall.jenkins.mape * (1 - GOAL_GAIN_OVER_JENKINS)
    found = [
        Goal(
            f"MAPE {GOAL_GAIN_OVER_JENKINS:.0%} below Jenkins",
            f"<= {_percent(ceiling)}",
            _percent(ours.mape),
            ours.mape <= ceiling,
        ),
        Goal(
            "p10-p90 coverage",
            f"{low * 100:.0f}-{high * 100:.0f} %",
            _percent(coverage, 1),
            low <= coverage <= high,
        ),
    ]
    for name, comparison in projects.items():
        found.append(
            Goal(
                f"MAPE < Jenkins: {name}",
                f"< {_percent(comparison.jenkins.mape)}",
                _percent(comparison.ours.mape),
                comparison.ours.mape < comparison.jenkins.mape,
            )
        )
    return found


def evaluate(
    history: History,
    settings: PredictorSettings | None = None,
    progress: Progress | None = None,
) -> Evaluation:
    """Replay ``history`` and score it overall, per project, and against the goal."""
    scored = replay(history.rows, settings, progress)
    by_project: dict[str, list[ScoredRow]] = defaultdict(list)
    for item in scored:
        by_project[item.row.project].append(item)
    projects = {name: compare(by_project[name]) for name in sorted(by_project)}
    overall = compare(scored)
    waits = score_waits(history.rows, settings)
    return Evaluation(history, scored, overall, projects, goals(overall, projects), waits)
