"""The client's calls to /predict: build durations, server recommendations, history tables."""

from __future__ import annotations

from buildcoord.client.transport import Transport
from buildcoord.models import BuildRecord, DurationEstimate, HistoryStats, Recommendation


class PredictionEndpoints(Transport):
    """Predictions from the build history."""

    def predict_duration(
        self, branch: str, server: str | None = None, *, trigger: str | None = None
    ) -> DurationEstimate:
        """Predict the duration of the next build of branch (on server, started by trigger)."""
        params = {"branch": branch, "server": server, "trigger": trigger}
        wanted = {name: value for name, value in params.items() if value is not None}
        return self._parse(DurationEstimate, self._call("GET", "/predict/duration", params=wanted))

    def recommend_server(self, branch: str, *, trigger: str | None = None) -> Recommendation:
        """The server with the earliest predicted finish for a build of branch (by trigger)."""
        params = {"branch": branch} | ({} if trigger is None else {"trigger": trigger})
        data = self._call("GET", "/predict/recommend", params=params)
        return self._parse(Recommendation, data)

    def build_history(self, limit: int = 10_000) -> list[BuildRecord]:
        """The ``limit`` most recently finished attempts, oldest first."""
        return self._parse(
            list[BuildRecord], self._call("GET", "/predict/history", params={"limit": limit})
        )

    def history_stats(self) -> HistoryStats:
        """Build history tables by branch, server, hour and weekday."""
        return self._parse(HistoryStats, self._call("GET", "/predict/stats"))
