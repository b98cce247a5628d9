"""Predict a build's duration (p50 and a p10-p90 band) from the builds that finished before it.

The method, and why (docs/prediction.md has the figures and how the constants were chosen):

* **A point estimate for relative error.** The p that minimises ``sum w_i * |p - y_i| / y_i``
  over past durations ``y_i`` is the weighted median of the ``y_i`` with weights ``w_i / y_i``:
  lower than the plain median, because over-predicting a short build costs more, relatively,
  than under-predicting a long one. Durations come in whole seconds and one value is a noisy
  pick, so p50 is the mean of the 1/y-weighted quantiles from 0.30 to 0.70 (an L-estimator:
  nearly as robust as the median, less jumpy).
* **Recency, and how much to pool, learnt per key.** ``w_i`` decays exponentially with how
  many builds ago ``y_i`` was. No single half-life suits every job (a stable job wants a long
  memory, one whose duration shifts wants a short one), nor a single pooling strength across
  branches or triggers, so one candidate p50 is computed per (half-life, branch weight,
  trigger weight) and each build key blends them by how well each predicted that key's past
  builds: a geometric mean weighted by each candidate's likelihood under a Laplace model of
  the key's own relative errors (``_choose``: exponentially weighted online model averaging
  whose sharpness is the key's own error scale, not a constant). The branch and trigger
  weights are the two neutral extremes, 1 (pool everything) and 1000 (only the same branch or
  trigger counts while there is one); the half-lives a geometric grid from the last build or
  two to the whole window. Nothing here was swept on a history file.
* **Robust to outliers.** A success far outside the key's band (beyond it by the band's own
  width, or by a factor of two if more) is held back: not learnt from, its error not
  counted, until two more builds beyond the band in the same direction confirm a level
  shift; a build in range first drops it. A hung build or a clock jump thus moves nothing,
  and a tenfold change of level is followed a few builds late.
* **Successes only.** A failed or cancelled build stops early or hangs; it does not enter the
  point estimate. Nor does a duration under a millisecond or over a week (``usable_duration``):
  no build a coordinator accepts lasts that long, and such a value (or a NaN) from an older
  store would make the ratios and logarithms below overflow. A p90 is at most a week too.
* **Fallback chain as shrinkage.** Past builds of the same build key are pooled; those on the
  same branch weigh ``branch_weights`` times more (each candidate weight), those on the same
  branch and server ``server_weight`` times more again, and those started by the same kind of
  trigger (when known: push, pull request, schedule) ``trigger_weights`` times more.
  A branch with many builds thus speaks for itself and a
  new one borrows from the build key. The reported level is the most specific of build key +
  branch + server, build key + branch (each with at least ``min_history`` successes) and build
  key; with no success of the key at all, the global pool of every build key.
* **A calibrated band.** Every successful build is first predicted, and ``log(actual / p50)``
  is kept for its build key and for the level used. p10 and p90 are p50 times the exponential of
  the recency-weighted empirical 10th and 90th percentiles of the key's residuals, shrunk toward
  the level's (pseudo-count ``band_prior``) when the key has few, and the level's toward a
  default band of -10 % / +20 % while the predictor has made few predictions at all.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from buildcoord.models import MAX_DURATION_SECONDS

Level = Literal["key+branch+server", "key+branch", "key", "global"]
LEVELS: tuple[Level, ...] = ("key+branch+server", "key+branch", "key", "global")

SUCCESS_RESULTS = frozenset({"success", "succeeded"})
"""Result names counted as a successful build (GitHub Actions' and buildcoord's own)."""

MIN_DURATION_SECONDS = 0.001
"""The shortest duration learnt from: below a millisecond, a duration is noise (or a
subnormal float whose ratios underflow to 0)."""

MIN_ERROR = 1e-6
"""The smallest mean relative error a candidate blend assumes (a key whose builds all last
exactly as predicted would otherwise divide by zero)."""

POINT_QUANTILES = (0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60, 0.65, 0.70)


@dataclass(frozen=True, slots=True)
class PredictorSettings:
    """The few tunable constants; docs/prediction.md says how each was chosen."""

    half_lives: tuple[float, ...] = (1.5, 4.0, 12.0, 40.0)
    """Candidate memories, in builds of the same key after which a duration weighs half."""
    branch_weights: tuple[float, ...] = (1.0, 1000.0)
    """Candidate weights of a past build of the key on the same branch, relative to one on
    another branch: pooling toward the branch, and none. Each pairs with each half-life."""
    server_weight: float = 16.0
    """How much more again a past build on the same branch and server weighs. Not measurable
    on the shared data (it records no runner): chosen so that a server's own few builds
    dominate, as a different machine differs systematically."""
    trigger_weights: tuple[float, ...] = (1.0, 1000.0)
    """Candidate weights of a past build started by the same kind of trigger (GitHub Actions:
    push, pull_request, ...) relative to one started otherwise, when the trigger is known."""
    selection_discount: float = 0.97
    """Per build, how much a candidate's past error is kept when weighing them (0.97: an
    error 23 builds ago counts half)."""
    min_history: int = 3
    """Successful builds a branch or server refinement needs to be reported as the level."""
    outlier_confirmations: int = 2
    """More builds beyond the band in the same direction that a far outlier must be followed
    by before it is learnt from (as a level shift)."""
    window: int = 60
    """Most recent successful builds kept per key (and globally)."""
    residual_half_life: float = 20.0
    """Builds after which a past error weighs half as much in the key's band."""
    residual_window: int = 100
    """Most recent residuals kept per build key."""
    level_residual_window: int = 1000
    """Most recent residuals kept per fallback level: the band's prior."""
    band_prior: float = 10.0
    """Pseudo-count of the prior when a key's residuals are shrunk toward the level's, and
    the level's toward ``default_band``."""
    default_band: tuple[float, float] = (math.log(0.9), math.log(1.2))
    """The band (log of p10/p50 and p90/p50) before there are errors to calibrate it on:
    a build is taken to land within -10 % and +20 % of its p50 until the predictor's own
    errors say otherwise (pseudo-count ``band_prior``). On the shared GitHub Actions history
    the calibrated band ends up at about 0.93-1.19 overall."""
    low_quantile: float = 0.10
    high_quantile: float = 0.90


@dataclass(frozen=True, slots=True)
class FinishedBuild:
    """One finished build as the predictor sees it."""

    key: str
    """Build identity: the job or workflow (buildcoord: branch + command)."""
    branch: str
    server: str | None
    started_at: datetime
    duration: float
    """Seconds on the build server, queueing excluded."""
    result: str
    trigger: str | None = None
    """What started the build (GitHub Actions: the event, e.g. push or pull_request), if known."""

    @property
    def succeeded(self) -> bool:
        """Whether the build counts as successful."""
        return self.result in SUCCESS_RESULTS


@dataclass(frozen=True, slots=True)
class Prediction:
    """A duration estimate in seconds and what it rests on."""

    p50: float
    p10: float
    p90: float
    history: int
    """Successful builds in the pool the point estimate was computed from."""
    level: Level


def expected_remaining(prediction: Prediction, elapsed: float) -> float:
    """Seconds a build that has run ``elapsed`` seconds is expected to need still: its p50
    while early; once it overran, half of what is left of its band (a late build is expected
    to end soon, not at once)."""
    return max(prediction.p50 - elapsed, (prediction.p90 - elapsed) / 2, 0.0)


@dataclass(frozen=True, slots=True)
class _Past:
    duration: float
    branch: str
    server: str | None
    trigger: str | None


@dataclass(frozen=True, slots=True)
class _Seen:
    """A build about to be learnt, and the residual of its prediction (with the level it
    was made at), if one was made."""

    past: _Past
    residual: tuple[float, Level] | None


def usable_duration(duration: float) -> bool:
    """Whether a duration (seconds) is one to learn from: a millisecond to a week."""
    return MIN_DURATION_SECONDS <= duration <= MAX_DURATION_SECONDS


def weighted_quantiles(
    values: Sequence[float], weights: Sequence[float], quantiles: Sequence[float]
) -> list[float]:
    """For each q, the smallest value whose cumulative weight reaches the fraction q of the
    total (``quantiles`` ascending)."""
    pairs = sorted(zip(values, weights, strict=True))
    return _sorted_quantiles([v for v, _ in pairs], [w for _, w in pairs], quantiles)


def _sorted_quantiles(
    values: Sequence[float], weights: Sequence[float], quantiles: Sequence[float]
) -> list[float]:
    """weighted_quantiles of values already in ascending order."""
    total = sum(weights)
    found: list[float] = []
    cumulative = 0.0
    position = 0
    last = len(values) - 1
    for q in quantiles:
        target = q * total
        while position < last and cumulative + weights[position] < target:
            cumulative += weights[position]
            position += 1
        found.append(values[position])
    return found


def _shrink(
    found: tuple[float, float] | None,
    count: int,
    prior: tuple[float, float],
    pseudo_count: float,
) -> tuple[float, float]:
    """Band quantiles from ``count`` residuals, shrunk toward ``prior`` (``pseudo_count``)."""
    if found is None:
        return prior
    share = count / (count + pseudo_count)
    return (
        share * found[0] + (1 - share) * prior[0],
        share * found[1] + (1 - share) * prior[1],
    )


def decay_weights(count: int, half_life: float) -> list[float]:
    """Weights for ``count`` items, oldest first: the newest weighs 1, each older one less."""
    return list(_decay(count, half_life))


@functools.lru_cache(maxsize=1024)
def _decay(count: int, half_life: float) -> tuple[float, ...]:
    factor = 0.5 ** (1.0 / half_life)
    return tuple(factor ** (count - 1 - index) for index in range(count))


_Estimate = tuple[list[float], int, Level]
"""One p50 per candidate, the pool size, the level."""


class Predictor:
    """Fed finished builds in start order; predicts the duration of the next build of a key."""

    def __init__(self, settings: PredictorSettings | None = None) -> None:
        self.settings = settings or PredictorSettings()
        self._history: dict[str, deque[_Past]] = {}
        self._global: deque[_Past] = deque(maxlen=self.settings.window)
        self._candidate_errors: dict[str, list[float]] = {}
        # Per key: outliers held back (their direction, the builds) until confirmed.
        self._suspects: dict[str, tuple[int, list[_Seen]]] = {}
        self._key_residuals: dict[str, deque[float]] = {}
        # Per key and branch: the servers its remembered builds ran on (rebuilt on change).
        self._servers_seen: dict[str, dict[str, frozenset[str]]] = {}
        # Per key: its estimates so far, by (branch, server, trigger); dropped when the key
        # learns a build. (An estimate from the global pool changes with every build: kept
        # nowhere.)
        self._estimates: dict[str, dict[tuple[str, str | None, str | None], _Estimate]] = {}
        # Band quantiles, computed once per change of the residuals they rest on.
        self._prior_bands: dict[Level, tuple[float, float]] = {}
        self._own_bands: dict[str, tuple[float, float] | None] = {}
        self._level_residuals: dict[Level, deque[float]] = {
            level: deque(maxlen=self.settings.level_residual_window) for level in LEVELS
        }

    def observe(self, build: FinishedBuild) -> None:
        """Record a finished build; a successful one also records how wrong we were about it.

        A success far outside the key's band is held back (not learnt from, its error not
        counted) until more builds confirm it as a level shift, and forgotten when a build
        in range comes first: a hung build or a clock jump moves nothing."""
        if not build.succeeded or not usable_duration(build.duration):
            return
        past = _Past(build.duration, build.branch, build.server, build.trigger)
        estimate = self._estimate(build.key, build.branch, build.server, build.trigger)
        if estimate is None:
            self._learn(build.key, [_Seen(past, None)])
            return
        candidates, _, level = estimate
        p50 = self._choose(build.key, candidates)
        residual = math.log(build.duration / p50)
        if level == "global":
            self._learn(build.key, [_Seen(past, (residual, level))])
            return
        admitted = self._screen(build.key, _Seen(past, (residual, level)))
        if admitted:
            self._learn_errors(build.key, candidates, build.duration)
            self._learn(build.key, admitted)

    def _learn(self, key: str, admitted: list[_Seen]) -> None:
        """Remember builds, and the residuals of the predictions made for them."""
        for seen in admitted:
            if seen.residual is not None:
                residual, level = seen.residual
                self._key_residuals.setdefault(
                    key, deque(maxlen=self.settings.residual_window)
                ).append(residual)
                self._level_residuals[level].append(residual)
                self._own_bands.pop(key, None)
                self._prior_bands.clear()
        pool = self._history.setdefault(key, deque(maxlen=self.settings.window))
        pool.extend(seen.past for seen in admitted)
        self._servers_seen.pop(key, None)
        self._estimates.pop(key, None)
        self._global.extend(seen.past for seen in admitted)

    def _screen(self, key: str, seen: _Seen) -> list[_Seen]:
        """The builds to learn from now: a far outlier is held back until as many more in the
        same direction confirm it (a level shift), and dropped when a build in range comes
        first. Far: beyond the key's own band by its width, or by a factor of two if more."""
        assert seen.residual is not None
        direction = 0
        if self._settled(key, seen.past):
            own = self._own_band(key)
            assert own is not None  # settled: the key has residuals
            low, high = own
            residual = seen.residual[0]
            margin = max(math.log(2.0), high - low)
            direction = 1 if residual > high + margin else -1 if residual < low - margin else 0
        if direction == 0:
            self._suspects.pop(key, None)
            return [seen]
        held = self._suspects.get(key)
        if held is None or held[0] != direction:
            held = (direction, [])
            self._suspects[key] = held
        held[1].append(seen)
        if len(held[1]) <= self.settings.outlier_confirmations:
            return []
        del self._suspects[key]
        return held[1]

    def _settled(self, key: str, past: _Past) -> bool:
        """Whether the key's band rests mostly on its own errors (``band_prior`` of them) and
        it has enough successes on this build's branch and with its trigger to call a build
        far from them an outlier (a new branch may well differ)."""
        if len(self._key_residuals.get(key, ())) < self.settings.band_prior:
            return False
        pool = self._history.get(key, ())
        minimum = self.settings.min_history
        on_branch = sum(1 for other in pool if other.branch == past.branch)
        if on_branch < minimum:
            return False
        if past.trigger is None:
            return True
        return sum(1 for other in pool if other.trigger == past.trigger) >= minimum

    def _learn_errors(self, key: str, candidates: list[float], duration: float) -> None:
        """Add each candidate's relative error on this build to its discounted sum."""
        errors = self._candidate_errors.setdefault(key, [0.0] * (len(candidates) + 1))
        discount = self.settings.selection_discount
        for index, candidate in enumerate(candidates):
            errors[index] = errors[index] * discount + abs(candidate - duration) / duration
        errors[-1] = errors[-1] * discount + 1.0

    def observe_all(self, builds: Iterable[FinishedBuild]) -> None:
        """Record builds in the order given (start order)."""
        for build in builds:
            self.observe(build)

    def predict(
        self, key: str, branch: str, server: str | None = None, trigger: str | None = None
    ) -> Prediction | None:
        """p50 and p10-p90 for the next build of ``key`` on ``branch`` (and ``server``), or None
        when no successful build has been seen at all."""
        if server is not None and server not in self.servers_with_history(key, branch):
            server = None  # the same answer as with no server (servers_with_history)
        asked = (branch, server, trigger)
        known = self._estimates.get(key)
        estimate = None if known is None else known.get(asked)
        if estimate is None:
            estimate = self._estimate(key, branch, server, trigger)
            if estimate is None:
                return None
            if estimate[2] != "global":
                self._estimates.setdefault(key, {})[asked] = estimate
        candidates, history, level = estimate
        # Every duration learnt lies within a week, so does their blend (up to rounding).
        p50 = min(self._choose(key, candidates), MAX_DURATION_SECONDS)
        low, high = self._band(key, level)
        return Prediction(
            p50=p50,
            p10=min(p50, p50 * math.exp(low)),
            p90=min(max(p50, p50 * math.exp(high)), MAX_DURATION_SECONDS),
            history=history,
            level=level,
        )

    def servers_with_history(self, key: str, branch: str) -> frozenset[str]:
        """The servers the remembered builds of ``key`` on ``branch`` ran on: only for these does
        naming the server change a prediction (for any other, ``predict`` answers exactly as
        with no server), so a caller asking about many servers need ask once for the rest."""
        by_branch = self._servers_seen.setdefault(key, {})
        found = by_branch.get(branch)
        if found is None:
            pool = self._history.get(key, ())
            found = frozenset(
                past.server for past in pool if past.branch == branch and past.server is not None
            )
            by_branch[branch] = found
        return found

    # --- internals ------------------------------------------------------------------------

    def _estimate(
        self, key: str, branch: str, server: str | None, trigger: str | None = None
    ) -> _Estimate | None:
        """One p50 per candidate (branch weight, half-life), the pool size, and the level."""
        settings = self.settings
        pool = self._history.get(key)
        level: Level = "key"
        if not pool:
            pool, level = self._global, "global"
            if not pool:
                return None
        values = [past.duration for past in pool]
        # Per past build: whether on the same branch, the same trigger, and its server factor.
        same_branch = [False] * len(pool)
        same_trigger = [False] * len(pool)
        other = [1.0] * len(pool)
        if level == "key":
            on_branch = on_server = 0
            for index, past in enumerate(pool):
                if trigger is not None and past.trigger == trigger:
                    same_trigger[index] = True
                if past.branch == branch:
                    same_branch[index] = True
                    on_branch += 1
                    if server is not None and past.server == server:
                        other[index] = settings.server_weight
                        on_server += 1
            if on_server >= settings.min_history:
                level = "key+branch+server"
            elif on_branch >= settings.min_history:
                level = "key+branch"
        # Sorted once; each candidate only reweighs (in sorted order) and walks the values.
        count = len(values)
        order = sorted(range(count), key=values.__getitem__)
        ordered = [values[index] for index in order]
        any_trigger = any(same_trigger)
        candidates: list[float] = []
        for branch_weight in settings.branch_weights:
            for trigger_weight in settings.trigger_weights:
                if not any_trigger and trigger_weight != settings.trigger_weights[0]:
                    # No past build shares the trigger: every trigger weight is the first.
                    candidates.extend(candidates[-len(settings.half_lives) :])
                    continue
                per_value = [
                    other[index]
                    * (branch_weight if same_branch[index] else 1.0)
                    * (trigger_weight if same_trigger[index] else 1.0)
                    / values[index]
                    for index in order
                ]
                for half_life in settings.half_lives:
                    decay = _decay(count, half_life)
                    weights = [decay[index] * w for index, w in zip(order, per_value, strict=True)]
                    quantiles = _sorted_quantiles(ordered, weights, POINT_QUANTILES)
                    candidates.append(sum(quantiles) / len(quantiles))
        return candidates, count, level

    def _choose(self, key: str, candidates: list[float]) -> float:
        """The candidates blended by how little their past predictions for this key erred.

        Each candidate's weight is its likelihood under a Laplace model of relative errors
        whose scale is the best candidate's mean error: ``exp(-(E_i - E_best) / b)`` with
        ``E_i`` the discounted error sums and ``b = E_best / n`` (``n`` the discounted count).
        A key whose builds are noisy (large errors) thus blends its candidates softly, one
        whose builds are steady follows the best sharply; no rate is chosen by hand. Before
        any error is known, every candidate weighs the same."""
        known = self._candidate_errors.get(key)
        if known is None:
            weights = [1.0] * len(candidates)
            best = 0
        else:
            errors, count = known[:-1], known[-1]
            best = min(range(len(errors)), key=errors.__getitem__)
            scale = max(errors[best], MIN_ERROR * count) / count
            weights = [math.exp(-(error - errors[best]) / scale) for error in errors]
        # Relative to the best candidate, so that equal candidates blend to exactly theirs.
        log_ratio = sum(
            weight * math.log(candidate / candidates[best])
            for weight, candidate in zip(weights, candidates, strict=True)
        ) / sum(weights)
        return candidates[best] * math.exp(log_ratio)

    def _band(self, key: str, level: Level) -> tuple[float, float]:
        """Log-ratio quantiles: the key's own residuals shrunk toward the level's."""
        prior = self._prior_bands.get(level)
        if prior is None:
            residuals: Sequence[float] = self._level_residuals[level]
            if not residuals:
                residuals = [r for kept in self._level_residuals.values() for r in kept]
            prior = _shrink(
                self._quantiles(residuals, decay=False),
                len(residuals),
                self.settings.default_band,
                self.settings.band_prior,
            )
            self._prior_bands[level] = prior
        own = self._own_band(key)
        if own is None:
            return prior
        count = len(self._key_residuals[key])
        return _shrink(own, count, prior, self.settings.band_prior)

    def _own_band(self, key: str) -> tuple[float, float] | None:
        """Log-ratio quantiles of the key's own residuals alone (recency-weighted)."""
        if key not in self._own_bands:
            own_residuals = self._key_residuals.get(key)
            if not own_residuals:
                return None
            self._own_bands[key] = self._quantiles(own_residuals, decay=True)
        return self._own_bands[key]

    def _quantiles(self, residuals: Sequence[float], *, decay: bool) -> tuple[float, float] | None:
        if not residuals:
            return None
        settings = self.settings
        weights = (
            decay_weights(len(residuals), settings.residual_half_life)
            if decay
            else [1.0] * len(residuals)
        )
        low, high = weighted_quantiles(
            residuals, weights, (settings.low_quantile, settings.high_quantile)
        )
        return low, high
