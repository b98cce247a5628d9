"""Non-causal references: what a predictor scores if it may look at builds *after* the one it
predicts. No live coordinator can; these bound what any causal method may hope for.

For a scored row, the reference for window ``w`` is the relative-error-optimal point (the
1/y-weighted median) of the job's ``w`` successful builds before it **and** ``w`` after it,
the row itself left out. ``bench/prediction_bound.py`` and ``bench/prediction_lopo.py``
report them beside ours.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass

from buildcoord.prediction.evaluation import ScoredRow
from buildcoord.prediction.history_file import HistoryRow
from buildcoord.prediction.predictor import SUCCESS_RESULTS

WINDOWS = (1, 2, 3, 4, 5, 7, 10, 15, 20, 40)


def relative_error_optimum(values: Sequence[float]) -> float:
    """The p minimising the summed |p - y| / y: the median of the values weighted by 1/y."""
    ordered = sorted(values)
    total = sum(1 / value for value in ordered)
    cumulative = 0.0
    for value in ordered:
        cumulative += 1 / value
        if cumulative >= total / 2:
            return value
    return ordered[-1]


def two_sided_errors(
    rows: Sequence[HistoryRow], scored: Sequence[ScoredRow], group: Callable[[HistoryRow], Hashable]
) -> dict[str, dict[int, float]]:
    """Per job, per window: the summed relative error of the two-sided reference, the
    neighbours taken from the row's ``group`` (the job, or the job and its trigger) when it
    has two or more other builds, else from the job's."""
    ordered = sorted(rows, key=lambda row: row.started_at)
    series: dict[Hashable, list[float]] = defaultdict(list)
    by_key: dict[str, list[float]] = defaultdict(list)
    where: dict[int, tuple[int, int]] = {}
    for row in ordered:
        if row.result in SUCCESS_RESULTS and row.duration > 0:
            where[id(row)] = (len(series[group(row)]), len(by_key[row.key]))
            series[group(row)].append(row.duration)
            by_key[row.key].append(row.duration)
    errors: dict[str, dict[int, float]] = defaultdict(lambda: dict.fromkeys(WINDOWS, 0.0))
    for item in scored:
        row = item.row
        in_group, in_key = where[id(row)]
        values, index = series[group(row)], in_group
        if len(values) < 3:  # the row and fewer than two others: use the job's builds
            values, index = by_key[row.key], in_key
        for window in WINDOWS:
            neighbours = (
                values[max(0, index - window) : index] + values[index + 1 : index + 1 + window]
            )
            estimate = relative_error_optimum(neighbours)
            errors[row.key][window] += abs(estimate - row.duration) / row.duration
    return errors


TRAILING_WINDOWS = (1, 2, 3, 4, 5, 7, 10, 15, 20, 40, 80)


def trailing_errors(
    rows: Sequence[HistoryRow], scored: Sequence[ScoredRow]
) -> dict[str, dict[int, float]]:
    """Per job, per window: the summed relative error of the relative-error optimum of the
    job's ``w`` successful builds *before* the row (a causal estimator: what the best trailing
    window per job, chosen in hindsight, would score)."""
    ordered = sorted(rows, key=lambda row: row.started_at)
    series: dict[str, list[float]] = defaultdict(list)
    where: dict[int, int] = {}
    for row in ordered:
        if row.result in SUCCESS_RESULTS and row.duration > 0:
            where[id(row)] = len(series[row.key])
            series[row.key].append(row.duration)
    errors: dict[str, dict[int, float]] = defaultdict(lambda: dict.fromkeys(TRAILING_WINDOWS, 0.0))
    for item in scored:
        row = item.row
        index, values = where[id(row)], series[row.key]
        for window in TRAILING_WINDOWS:
            estimate = relative_error_optimum(values[max(0, index - window) : index])
            errors[row.key][window] += abs(estimate - row.duration) / row.duration
    return errors


@dataclass(frozen=True, slots=True)
class LookAhead:
    """The references' MAPE over a set of scored rows (fractions)."""

    best_window: int
    best_window_mape: float
    """One window for every job, the best one for these rows."""
    hindsight_key_mape: float
    """Each job's best window, chosen after seeing all its errors."""


def look_ahead(rows: Sequence[HistoryRow], scored: Sequence[ScoredRow]) -> LookAhead:
    """The two-sided references over ``scored`` (whose rows are among ``rows``)."""
    if not scored:
        return LookAhead(WINDOWS[0], float("nan"), float("nan"))
    by_key = two_sided_errors(rows, scored, lambda row: row.key)
    count = len(scored)
    fixed = {w: sum(errors[w] for errors in by_key.values()) / count for w in WINDOWS}
    best = min(fixed, key=fixed.__getitem__)
    hindsight = sum(min(errors.values()) for errors in by_key.values()) / count
    return LookAhead(best, fixed[best], hindsight)
