"""Prediction bound: how close the causal predictor is to smoothers that see the future.

The accuracy target is a MAPE at least 25 % below Jenkins' on the same rows, on any real
history (issue 17); this script reports ours against it (``ours_mape``,
``ours_gain_over_jenkins``, ``gain_target``) on the one shipped in data/durations/. It
also measures, on the same scored rows and in the same run, what a predictor would score if
it were allowed to look at builds *after* the one it predicts — a bound no causal method (one
that uses only earlier builds, as a live coordinator must) is expected to beat:

1. ``ours``: ``buildcoord.prediction`` replayed under the protocol (``predict evaluate``);
2. ``jenkins``: the mean of the last 3 successful builds (the baseline);
3. ``two_sided[w]``: for every scored row, the relative-error-optimal point (the 1/y-weighted
   median) of the job's ``w`` successful builds before it **and** ``w`` after it, the row
   itself left out, for w in 1..40 — one w for every job;
4. ``hindsight_key``: the same, with each job's best w chosen after seeing all its errors;
5. ``hindsight_key_trigger``: as 4, but the neighbours come from the job's builds with the
   same trigger (the file's ``event`` column) when it has two or more, else from the job's;
6. ``trailing_hindsight_key``: a causal reference — the optimum of the job's ``w`` builds
   *before* the row only, each job's best w (1..80) chosen in hindsight.

Ratios printed: ours ÷ each reference (above 1: the reference, which sees the future, is
better). ``--quick`` uses the first 4,000 rows (in start order); the full file takes ~5 s.

Usage::

    .venv/bin/python bench/prediction_bound.py [--quick] [--json] [--file HISTORY.csv.gz]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from buildcoord.prediction.evaluation import replay
from buildcoord.prediction.history_file import History, read_history
from buildcoord.prediction.lookahead import WINDOWS, trailing_errors, two_sided_errors

# Real GitHub Actions job durations shipped with the repository (data/durations/README.md).
DEFAULT_FILE = Path(__file__).resolve().parents[1] / "data" / "durations" / "gha_jobs.csv.gz"
GAIN_TARGET = 0.25
QUICK_ROWS = 4000


def measure(history: History) -> dict[str, object]:
    """Every figure of the module docstring, as fractions."""
    started = time.perf_counter()
    scored = replay(history.rows)
    count = len(scored)
    ours = [abs(item.prediction.p50 - item.row.duration) / item.row.duration for item in scored]
    jenkins = [abs(item.jenkins - item.row.duration) / item.row.duration for item in scored]
    print(f"replayed {len(history.rows):,} rows, {count:,} scored", file=sys.stderr)
    by_key = two_sided_errors(history.rows, scored, lambda row: row.key)
    print("two-sided references by job done", file=sys.stderr)
    by_trigger = two_sided_errors(history.rows, scored, lambda row: (row.key, row.trigger))
    print("two-sided references by job and trigger done", file=sys.stderr)
    fixed = {w: sum(errors[w] for errors in by_key.values()) / count for w in WINDOWS}
    best_window = min(fixed, key=lambda w: fixed[w])
    hindsight_key = sum(min(errors.values()) for errors in by_key.values()) / count
    hindsight_trigger = sum(min(errors.values()) for errors in by_trigger.values()) / count
    trailing = trailing_errors(history.rows, scored)
    trailing_hindsight = sum(min(errors.values()) for errors in trailing.values()) / count
    figures: dict[str, object] = {
        "file": history.path,
        "rows": len(history.rows),
        "scored": count,
        "ours_mape": statistics.fmean(ours),
        "ours_mdape": statistics.median(ours),
        "gain_target": GAIN_TARGET,
        "ours_gain_over_jenkins": 1 - statistics.fmean(ours) / statistics.fmean(jenkins),
        "jenkins_mape": statistics.fmean(jenkins),
        "two_sided_mape": {str(w): fixed[w] for w in WINDOWS},
        "two_sided_best_window": best_window,
        "two_sided_best_mape": fixed[best_window],
        "hindsight_key_mape": hindsight_key,
        "hindsight_key_trigger_mape": hindsight_trigger,
        "ours_over_two_sided_best": statistics.fmean(ours) / fixed[best_window],
        "ours_over_hindsight_key": statistics.fmean(ours) / hindsight_key,
        "ours_over_hindsight_key_trigger": statistics.fmean(ours) / hindsight_trigger,
        "trailing_hindsight_key_mape": trailing_hindsight,
        "ours_over_trailing_hindsight_key": statistics.fmean(ours) / trailing_hindsight,
        "seconds": time.perf_counter() - started,
    }
    return figures


def report(figures: dict[str, object]) -> str:
    """The figures as a table."""

    def pct(name: str) -> str:
        value = figures[name]
        assert isinstance(value, float)
        return f"{value * 100:6.2f} %"

    windows = figures["two_sided_mape"]
    assert isinstance(windows, dict)
    lines = [
        f"{figures['file']}: {figures['rows']:,} rows, {figures['scored']:,} scored",
        "",
        "causal (uses only builds that started before):",
        f"  ours (buildcoord.prediction)           MAPE {pct('ours_mape')}"
        f"   MdAPE {pct('ours_mdape')}   ({pct('ours_gain_over_jenkins').strip()} below"
        f" Jenkins; target: {pct('gain_target').strip()} or more)",
        f"  Jenkins (mean of the last 3)           MAPE {pct('jenkins_mape')}",
        "",
        "non-causal references (see builds after the predicted one):",
        "  two-sided window, one w for all jobs:  "
        + "  ".join(f"w={w}: {value * 100:.2f}" for w, value in windows.items()),
        f"  best single w ({figures['two_sided_best_window']})"
        f"                     MAPE {pct('two_sided_best_mape')}",
        f"  best w per job, chosen in hindsight    MAPE {pct('hindsight_key_mape')}",
        f"  ... per job and trigger, in hindsight  MAPE {pct('hindsight_key_trigger_mape')}",
        "",
        "causal reference (builds before only, but tuned in hindsight):",
        f"  trailing window, each job's best w     MAPE {pct('trailing_hindsight_key_mape')}",
        "",
        f"ours / best single w:            {figures['ours_over_two_sided_best']:.3f}",
        f"ours / hindsight per job:        {figures['ours_over_hindsight_key']:.3f}",
        f"ours / hindsight job + trigger:  {figures['ours_over_hindsight_key_trigger']:.3f}",
        f"ours / trailing, hindsight:      {figures['ours_over_trailing_hindsight_key']:.3f}",
        f"({figures['seconds']:.1f} s)",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"the first {QUICK_ROWS:,} rows")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="history CSV(.gz)")
    options = parser.parse_args()
    if not options.file.exists():
        parser.error(f"{options.file} does not exist (give the history with --file)")
    history = read_history(options.file)
    if options.quick:
        first = sorted(history.rows, key=lambda row: row.started_at)[:QUICK_ROWS]
        history = History(
            history.path, first, history.skipped, history.malformed, history.malformed_lines
        )
    figures = measure(history)
    if options.json:
        print(json.dumps(figures, indent=2))
    else:
        print(report(figures))


if __name__ == "__main__":
    main()
