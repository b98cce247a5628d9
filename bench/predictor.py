"""Predictor speed: what a coordinator pays to learn its history and to answer a forecast.

A coordinator feeds its ``Predictor`` the latest 50,000 finished builds when it starts (in a
thread; ``services/prediction.py``: ``LOAD_WINDOW``, ``warm_up``) and then one build per finished
job; a ``queue list`` forecast asks for one prediction per (build key, branch, server) it
meets. On synthetic builds (default 50,000 over 200 build keys, 5 branches, 4 servers, 10 %
failures; ``--quick``: 10,000) this times:

1. ``observe``: feeding every build, per build and in all (the start-up cost);
2. ``predict``: 2,000 predictions of distinct (key, branch, server) triples, per prediction,
   after all builds were fed (one forecast of a big queue);
3. the baseline, measured in the same run on the same builds: ``JenkinsEstimator`` (the mean
   of the last 3 successes), fed and asked alike.

Ratios printed: ours ÷ the baseline per build and per prediction (how much dearer the
method is than the crudest estimate). Best of ``--rounds`` (default 3).

Usage::

    .venv/bin/python bench/predictor.py [--quick] [--json] [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from buildcoord.prediction.jenkins import JenkinsEstimator
from buildcoord.prediction.predictor import FinishedBuild, Predictor

KEYS, BRANCHES, SERVERS = 200, 5, 4
QUESTIONS = 2000


def synthetic_builds(count: int, seed: int = 1) -> list[FinishedBuild]:
    """Builds one minute apart; each key has its own typical duration, noise ±20 %."""
    rng = random.Random(seed)
    typical = [rng.uniform(30, 1800) for _ in range(KEYS)]
    start = datetime(2026, 1, 1, tzinfo=UTC)
    builds = []
    for index in range(count):
        key = rng.randrange(KEYS)
        builds.append(
            FinishedBuild(
                key=f"key-{key}",
                branch=f"branch-{rng.randrange(BRANCHES)}",
                server=f"server-{rng.randrange(SERVERS)}",
                started_at=start + timedelta(minutes=index),
                duration=typical[key] * rng.uniform(0.8, 1.2),
                result="success" if rng.random() < 0.9 else "failure",
            )
        )
    return builds


def questions() -> list[tuple[str, str, str]]:
    """Distinct (key, branch, server) triples, as a forecast of a long queue meets them."""
    triples = [
        (f"key-{k}", f"branch-{b}", f"server-{s}")
        for k in range(KEYS)
        for b in range(BRANCHES)
        for s in range(SERVERS)
    ]
    return random.Random(2).sample(triples, QUESTIONS)


def best_of(rounds: int, run: Callable[[], tuple[float, float]]) -> tuple[float, float]:
    """The fastest feed time and fastest question time over ``rounds`` runs."""
    feeds, asks = zip(*(run() for _ in range(rounds)), strict=True)
    return min(feeds), min(asks)


def time_ours(
    builds: list[FinishedBuild], asked: list[tuple[str, str, str]]
) -> tuple[float, float]:
    predictor = Predictor()
    started = time.perf_counter()
    predictor.observe_all(builds)
    fed = time.perf_counter()
    for key, branch, server in asked:
        predictor.predict(key, branch, server)
    return fed - started, time.perf_counter() - fed


def time_jenkins(
    builds: list[FinishedBuild], asked: list[tuple[str, str, str]]
) -> tuple[float, float]:
    estimator = JenkinsEstimator()
    started = time.perf_counter()
    for build in builds:
        estimator.observe(build)
    fed = time.perf_counter()
    for key, _, _ in asked:
        estimator.predict(key)
    return fed - started, time.perf_counter() - fed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 builds, one round")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, help="runs per contender (best counts)")
    options = parser.parse_args()
    count = 10_000 if options.quick else 50_000
    rounds = options.rounds or (1 if options.quick else 3)
    builds = synthetic_builds(count)
    asked = questions()
    ours_feed, ours_ask = best_of(rounds, lambda: time_ours(builds, asked))
    base_feed, base_ask = best_of(rounds, lambda: time_jenkins(builds, asked))
    figures = {
        "builds": count,
        "questions": len(asked),
        "rounds": rounds,
        "feed_seconds": ours_feed,
        "observe_us": ours_feed / count * 1e6,
        "predict_us": ours_ask / len(asked) * 1e6,
        "forecast_ms": ours_ask * 1e3,
        "baseline_observe_us": base_feed / count * 1e6,
        "baseline_predict_us": base_ask / len(asked) * 1e6,
        "observe_ratio": ours_feed / base_feed,
        "predict_ratio": ours_ask / base_ask,
    }
    if options.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{count:,} synthetic builds ({KEYS} keys, {BRANCHES} branches, {SERVERS} servers)")
    print(
        f"feed all:   {ours_feed:6.2f} s   observe {figures['observe_us']:6.1f} us/build"
        f"   (Jenkins {figures['baseline_observe_us']:.1f} us: x{figures['observe_ratio']:.0f})"
    )
    print(
        f"{len(asked):,} predictions: {figures['forecast_ms']:6.0f} ms"
        f"   predict {figures['predict_us']:6.1f} us each"
        f"   (Jenkins {figures['baseline_predict_us']:.1f} us: x{figures['predict_ratio']:.0f})"
    )


if __name__ == "__main__":
    main()
