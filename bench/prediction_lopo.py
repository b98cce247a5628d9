"""Prediction out of sample: leave one project out, tune on the other four, score the fifth.

The predictor learns its memory, its pooling across branches and triggers and its band per
build key, online (``buildcoord.prediction.predictor``). What it still takes as constants
are a few priors (how fast the blend forgets candidates' past errors, the band's recency and
prior strength). This script asks whether those depend on the history they were looked at on:

1. Every point of a grid over those constants is replayed on each project **alone** (its own
   predictor: nothing learnt on one project reaches another), under the protocol of
   ``predict evaluate``.
2. **In-sample**: the grid point with the lowest MAPE over all projects' rows, scored on each.
3. **Leave one project out**: for each project, the grid point with the lowest MAPE over the
   *other* projects' rows, scored on it — a project it was never tuned on.
4. Beside them, per project: the shipped defaults, Jenkins (mean of the last 3 successes,
   the baseline measured in the same run) and the look-ahead references
   (``buildcoord.prediction.lookahead``: the best two-sided window, and each job's best
   window chosen in hindsight), which see the future.

Goal (issue 17): every leave-one-out MAPE below Jenkins' on its project, and the mean of the
five leave-one-out MAPEs within 10 % of the mean of the five in-sample ones. Ratios printed:
ours ÷ Jenkins and ours ÷ the look-ahead per project, leave-one-out mean ÷ in-sample mean.

``--quick``: a 3-point grid (the blend's discount only), ~15 s; the full grid has 27 points,
~2 min.

Usage::

    .venv/bin/python bench/prediction_lopo.py [--quick] [--json] [--file HISTORY.csv.gz]
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from buildcoord.prediction.evaluation import ScoredRow, accuracy, replay
from buildcoord.prediction.history_file import HistoryRow, read_history
from buildcoord.prediction.lookahead import look_ahead
from buildcoord.prediction.predictor import PredictorSettings

DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "durations" / "gha_jobs.csv.gz"
GRID = {
    "selection_discount": (0.9, 0.97, 0.99),
    "residual_half_life": (10.0, 20.0, 40.0),
    "band_prior": (3.0, 10.0, 30.0),
}
QUICK_GRID = {"selection_discount": (0.9, 0.97, 0.99)}
CLOSE_ENOUGH = 0.10
"""The leave-one-out mean may differ from the in-sample mean by this fraction at most."""


@dataclass(frozen=True, slots=True)
class Scores:
    """One grid point's errors on one project: summed APE, rows, rows inside the band."""

    ape: float
    rows: int
    inside: int

    @property
    def mape(self) -> float:
        """Mean absolute percentage error (a fraction)."""
        return self.ape / self.rows if self.rows else math.nan


def _scores(scored: Sequence[ScoredRow]) -> Scores:
    ape = sum(abs(item.prediction.p50 - item.row.duration) / item.row.duration for item in scored)
    inside = sum(
        1 for item in scored if item.prediction.p10 <= item.row.duration <= item.prediction.p90
    )
    return Scores(ape, len(scored), inside)


def _pooled(scores: Sequence[Scores]) -> float:
    rows = sum(item.rows for item in scores)
    return sum(item.ape for item in scores) / rows if rows else math.nan


def measure(rows: Sequence[HistoryRow], grid: dict[str, tuple[float, ...]]) -> dict[str, object]:
    """Every figure of the module docstring (fractions)."""
    started = time.perf_counter()
    by_project: dict[str, list[HistoryRow]] = defaultdict(list)
    for row in rows:
        by_project[row.project].append(row)
    projects = sorted(by_project)
    names = list(grid)
    points = [dict(zip(names, values, strict=True)) for values in itertools.product(*grid.values())]
    default = PredictorSettings()
    # results[point][project]
    results: list[dict[str, Scores]] = []
    baseline: dict[str, dict[str, object]] = {}
    for number, point in enumerate(points, start=1):
        settings = replace(default, **point)
        found = {}
        for project in projects:
            scored = replay(by_project[project], settings)
            found[project] = _scores(scored)
            if project not in baseline and all(
                getattr(default, name) == value for name, value in point.items()
            ):
                jenkins = accuracy(scored, jenkins=True)
                reference = look_ahead(by_project[project], scored)
                baseline[project] = {
                    "jenkins_mape": jenkins.mape,
                    "look_ahead_best_window": reference.best_window,
                    "look_ahead_best_window_mape": reference.best_window_mape,
                    "look_ahead_hindsight_key_mape": reference.hindsight_key_mape,
                }
        results.append(found)
        print(
            f"grid point {number}/{len(points)} {point}: MAPE "
            f"{_pooled(list(found.values())) * 100:.2f} %",
            file=sys.stderr,
        )
    missing = [project for project in projects if project not in baseline]
    if missing:  # the defaults lie off the grid: score them once more
        for project in missing:
            scored = replay(by_project[project], default)
            reference = look_ahead(by_project[project], scored)
            baseline[project] = {
                "jenkins_mape": accuracy(scored, jenkins=True).mape,
                "look_ahead_best_window": reference.best_window,
                "look_ahead_best_window_mape": reference.best_window_mape,
                "look_ahead_hindsight_key_mape": reference.hindsight_key_mape,
            }
    default_index = next(
        (
            index
            for index, point in enumerate(points)
            if all(getattr(default, name) == value for name, value in point.items())
        ),
        None,
    )
    in_sample_index = min(
        range(len(points)), key=lambda index: _pooled(list(results[index].values()))
    )
    table = {}
    for project in projects:
        others = [name for name in projects if name != project]
        chosen = min(
            range(len(points)),
            key=lambda index: _pooled([results[index][name] for name in others]),
        )
        held_out = results[chosen][project]
        in_sample = results[in_sample_index][project]
        jenkins_mape = baseline[project]["jenkins_mape"]
        assert isinstance(jenkins_mape, float)
        look = baseline[project]["look_ahead_best_window_mape"]
        assert isinstance(look, float)
        table[project] = {
            "scored": held_out.rows,
            "lopo_mape": held_out.mape,
            "lopo_coverage": held_out.inside / held_out.rows if held_out.rows else math.nan,
            "lopo_settings": points[chosen],
            "in_sample_mape": in_sample.mape,
            "default_mape": (
                results[default_index][project].mape if default_index is not None else None
            ),
            **baseline[project],
            "lopo_over_jenkins": held_out.mape / jenkins_mape,
            "lopo_over_look_ahead": held_out.mape / look,
            "lopo_better_than_jenkins": held_out.mape < jenkins_mape,
        }
    lopo_mean = statistics.fmean(float(entry["lopo_mape"]) for entry in table.values())
    in_sample_mean = statistics.fmean(float(entry["in_sample_mape"]) for entry in table.values())
    return {
        "rows": len(rows),
        "projects": table,
        "grid": {name: list(values) for name, values in grid.items()},
        "grid_points": len(points),
        "in_sample_settings": points[in_sample_index],
        "in_sample_mape_pooled": _pooled(list(results[in_sample_index].values())),
        "lopo_mean_mape": lopo_mean,
        "in_sample_mean_mape": in_sample_mean,
        "lopo_over_in_sample": lopo_mean / in_sample_mean,
        "goal_every_lopo_better_than_jenkins": all(
            bool(entry["lopo_better_than_jenkins"]) for entry in table.values()
        ),
        "goal_lopo_mean_within_10_percent": abs(lopo_mean / in_sample_mean - 1) <= CLOSE_ENOUGH,
        "seconds": time.perf_counter() - started,
    }


def report(figures: dict[str, object]) -> str:
    """The figures as a table."""
    table = figures["projects"]
    assert isinstance(table, dict)
    lines = [
        f"{figures['rows']:,} rows; grid of {figures['grid_points']} points over "
        f"{', '.join(figures['grid'])}; in-sample choice {figures['in_sample_settings']}",
        "",
        f"{'project':30} {'scored':>6} {'LOPO':>7} {'in-sample':>9} {'default':>7} "
        f"{'Jenkins':>7} {'look-ahead':>10} {'hindsight':>9} {'LOPO/Jenkins':>12} "
        f"{'LOPO/look-ahead':>15} {'coverage':>8}",
    ]

    def pct(value: object) -> str:
        return "-" if not isinstance(value, float) or math.isnan(value) else f"{value * 100:.2f}"

    for project, entry in table.items():
        lines.append(
            f"{project[:30]:30} {entry['scored']:>6,} {pct(entry['lopo_mape']):>7} "
            f"{pct(entry['in_sample_mape']):>9} {pct(entry['default_mape']):>7} "
            f"{pct(entry['jenkins_mape']):>7} "
            f"{pct(entry['look_ahead_best_window_mape']):>6} "
            f"w={entry['look_ahead_best_window']:<2} "
            f"{pct(entry['look_ahead_hindsight_key_mape']):>9} "
            f"{entry['lopo_over_jenkins']:>12.3f} {entry['lopo_over_look_ahead']:>15.3f} "
            f"{pct(entry['lopo_coverage']):>8}"
        )
    lines += [
        "(MAPE in %; LOPO: tuned on the other projects; look-ahead: the best two-sided window"
        " for the project, hindsight: each job's best window — both see the future)",
        "",
        f"mean of the LOPO MAPEs {pct(figures['lopo_mean_mape'])} %, of the in-sample ones "
        f"{pct(figures['in_sample_mean_mape'])} %: ratio {figures['lopo_over_in_sample']:.3f}"
        f" (goal: within {CLOSE_ENOUGH:.0%}) "
        f"{'PASS' if figures['goal_lopo_mean_within_10_percent'] else 'MISS'}",
        "every LOPO MAPE below Jenkins' on its project: "
        f"{'PASS' if figures['goal_every_lopo_better_than_jenkins'] else 'MISS'}",
        f"({figures['seconds']:.1f} s)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a 3-point grid")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="history CSV(.gz)")
    options = parser.parse_args()
    if not options.file.exists():
        parser.error(f"{options.file} does not exist (give the history with --file)")
    history = read_history(options.file)
    if len({row.project for row in history.rows}) < 2:
        parser.error(f"{options.file}: leaving one project out needs two projects or more")
    figures = measure(history.rows, QUICK_GRID if options.quick else GRID)
    figures["file"] = str(options.file)
    if options.json:
        print(json.dumps(figures, indent=2, default=asdict))
    else:
        print(report(figures))


if __name__ == "__main__":
    main()
