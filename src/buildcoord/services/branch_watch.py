"""Watching branches for new commits: polling, cron schedules, push webhooks and queue-all.

The rules, whichever way a tip arrives:

- A tip is read from the branch's repository (``git ls-remote``), never from a checkout.
- A commit is queued once per branch: submit runs with ``once_per_commit``, which checks for
  a job at that commit (queued, running or finished) and inserts in one transaction locked
  on the branch's row, so repeated or concurrent checks, on one coordinator or several,
  cannot queue it twice. ``seen_commit`` then moves by compare-and-set; it only records
  what was acted on, so a crash between the two steps is repaired by the next look.
- The first tip ever seen of a branch is recorded, not built (adding branches starts no
  builds).
- Pollers and webhooks wait for quiet: a tip is queued once it has stayed the same for
  ``branch_quiet_seconds``, so a burst of pushes ends in one build of its last commit. An
  operator's ``check-updates`` and ``queue-all`` do not wait.
- A push webhook names a commit but proves nothing about it: the commit is queued only as the
  tip read from the repository (at once with no quiet period, else by the re-check after it).
  A delivery id accepted before, by any coordinator, is refused as a replay.
- With ``cancel_superseded_builds``, queueing a new tip cancels the still-queued build of
  the tip it replaces, when a push queued that build (never one queued by hand or by a
  schedule).
- A queued job records what started it (its ``trigger``, which the duration predictor
  weighs): ``push`` for a new tip (webhook, poller, ``check-updates``), ``schedule`` for a
  cron run, ``manual`` for ``queue-all``.
- A repository that cannot be read sets the branch's ``check_error``; the first failure of
  a streak appends an event and sends one error message to ``all``; success clears it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from buildcoord import git, validation
from buildcoord.clock import Clock
from buildcoord.config import Settings
from buildcoord.errors import BuildcoordError, CommitKnown, Conflict, InvalidInput, NotFound
from buildcoord.models import (
    BROADCAST,
    SYSTEM,
    TRIGGER_MANUAL,
    TRIGGER_PUSH,
    TRIGGER_SCHEDULE,
    Branch,
    BranchCheck,
    Principal,
)
from buildcoord.services import webhooks
from buildcoord.services.authority import require_operator
from buildcoord.services.branches import parse_schedule
from buildcoord.services.messages import MessageService
from buildcoord.services.queue import QueueService
from buildcoord.store import Store
from buildcoord.store.timestamps import from_epoch

log = logging.getLogger("buildcoord.branches")

ALERT_SENDER = "coordinator"
# Repositories read at once; a slow one then delays the others by at most its timeout.
PARALLEL_READS = 4

_Tips = dict[str, str] | BuildcoordError


class BranchWatch:
    """Find new tips of set-up branches and queue each once."""

    def __init__(
        self,
        store: Store,
        clock: Clock,
        settings: Settings,
        queue: QueueService,
        messages: MessageService,
    ) -> None:
        self.store = store
        self.clock = clock
        self.settings = settings
        self.queue = queue
        self.messages = messages
        # Tips waiting for quiet, per branch: (tip, first seen at). In memory: another
        # coordinator keeps its own, and its queueing is deduplicated by the store.
        self._waiting: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._last_poll: float | None = None
        self._thread: threading.Thread | None = None
        # Webhooks being handled in this process (see web/routes/webhooks.py).
        self.push_slots = webhooks.ReadSlots(settings.webhook_max_concurrent)

    # -- what operators and webhooks call ------------------------------------------------

    def check_updates(
        self, names: Sequence[str] | None = None, *, by: Principal
    ) -> list[BranchCheck]:
        """Look at the tips of enabled auto-build branches now and queue new ones at once."""
        require_operator(by, "checking branches for updates")
        chosen = self._auto_built(names)
        results = self._check(chosen, quiet=0.0)
        self._record_request(by, "branches.checked", results)
        return results

    def queue_all(self, *, by: Principal) -> list[BranchCheck]:
        """Queue the remote tip of every enabled branch unless that commit has a job already."""
        require_operator(by, "queueing every branch")
        enabled = [branch for branch in self.store.list_branches() if branch.enabled]
        tips = self._read_tips(enabled)
        results = []
        for branch in enabled:
            tip = self._tip_or_failure(branch, tips[branch.repo])
            if isinstance(tip, BranchCheck):
                results.append(tip)
            else:
                results.append(
                    self._queue_commit(branch, tip, why="queue-all", trigger=TRIGGER_MANUAL)
                )
        self._record_request(by, "branches.queued_all", results)
        return results

    def _record_request(self, by: Principal, kind: str, results: list[BranchCheck]) -> None:
        """Put an operator's request in the audit trail, with what each branch came to (the
        jobs it queued are recorded on their own)."""
        self.store.record_action(
            at=self.clock.now().timestamp(),
            actor=by.actor,
            kind=kind,
            subject="branches",
            after={"outcomes": {check.branch: check.outcome for check in results[:100]}},
        )

    def receive_push(
        self, body: bytes, signature: str | None, delivery: str | None = None
    ) -> BranchCheck:
        """Act on a verified push webhook: queue the pushed branch's new commit.

        delivery is the id GitHub or Gitea gives the delivery: Conflict when it was accepted
        before (a replay). A pushed commit is queued only once the branch's repository shows
        it as the branch's tip (see _confirmed_push).
        """
        webhooks.verify_signature(self.settings.webhook_secret, body, signature)
        if delivery is not None:
            self._record_delivery(delivery)
        push = webhooks.parse_push(body)
        name = push.branch or "-"
        if push.branch is None:
            return BranchCheck(name, "ignored", detail="not a push to a branch")
        if push.deletes_branch:
            return BranchCheck(name, "ignored", detail="the push deleted the branch")
        branch = self.store.find_branch(push.branch)
        if branch is None:
            return BranchCheck(name, "ignored", detail="no such branch is set up")
        if not webhooks.same_repository(branch.repo, push.repositories):
            source = webhooks.without_credentials(branch.repo)
            return BranchCheck(name, "ignored", detail=f"{name} is set up from {source}")
        if not branch.enabled or not branch.auto_build:
            why = "disabled" if not branch.enabled else "auto-build is off"
            return BranchCheck(name, "ignored", detail=f"the branch is {why}")
        try:
            commit = git_commit(push.commit)
        except BuildcoordError as exc:
            return BranchCheck(name, "ignored", detail=str(exc))
        quiet = self.settings.branch_quiet_seconds
        if quiet > 0:
            # The tip waits; the re-check after the quiet period reads the repository and
            # queues what it finds there, never the pushed commit unseen.
            return self._act_on_tip(branch, commit, quiet=quiet, first_builds=True, unread=True)
        return self._confirmed_push(branch, commit)

    def _record_delivery(self, delivery: str) -> None:
        """Remember an accepted delivery; Conflict when any coordinator accepted it before."""
        now = self.clock.now().timestamp()
        if not self.store.record_webhook_delivery(delivery, now=now):
            raise Conflict(f"webhook delivery {delivery} was received before: a replay is refused")

    def _confirmed_push(self, branch: Branch, commit: str) -> BranchCheck:
        """Queue a pushed commit at once, if the repository's tip of the branch is that commit.

        ls-remote reads tips only, from a path or a remote alike, so the check is equality
        with the tip: a commit the repository does not have is never the tip, and a late
        delivery of an older push is not built (the newer push's delivery builds the newer
        tip). A repository that cannot be read fails the push as it fails a poll.
        """
        tip = self._tip_or_failure(branch, self._read_tips([branch])[branch.repo])
        if isinstance(tip, BranchCheck):
            return tip
        if tip != commit:
            return BranchCheck(
                branch.name,
                "ignored",
                commit,
                detail=f"the tip of {branch.name} in its repository is {tip[:12]}, "
                "not the pushed commit",
            )
        # A pushed commit is new by definition, even to a branch whose tip was never read.
        return self._act_on_tip(branch, tip, quiet=0.0, first_builds=True)

    def forget_old_deliveries(self) -> int:
        """Forget webhook deliveries older than a week; how many were forgotten."""
        before = self.clock.now().timestamp() - webhooks.DELIVERY_KEEP_SECONDS
        return self.store.forget_webhook_deliveries(before=before)

    # -- the background pass -------------------------------------------------------------

    def step(self) -> list[BranchCheck]:
        """One pass: fire due schedules, then poll when due, else re-check waiting tips."""
        now = self.clock.now().timestamp()
        results = self._run_schedules(now)
        if self._poll_due(now):
            self._last_poll = now
            results += self._check(self._auto_built(None), quiet=self.settings.branch_quiet_seconds)
        else:
            waiting = self._waiting_due(now)
            if waiting:
                chosen = [b for b in self._auto_built(None) if b.name in waiting]
                # A branch removed, disabled or no longer auto-built since: nothing to re-check.
                self._forget(waiting - {branch.name for branch in chosen})
                results += self._check(chosen, quiet=self.settings.branch_quiet_seconds)
        return results

    def due(self) -> bool:
        """Whether step() has anything to do now (cheap: no git, one small read)."""
        now = self.clock.now().timestamp()
        if self._poll_due(now) or self._waiting_due(now):
            return True
        return any(
            branch.enabled
            and branch.schedule
            and (branch.next_scheduled_at is None or branch.next_scheduled_at.timestamp() <= now)
            for branch in self.store.list_branches()
        )

    def start_if_due(self) -> bool:
        """Run step() in a thread of its own when due and none is running (git can be slow)."""
        if self._thread is not None and self._thread.is_alive():
            return False
        if not self.due():
            return False
        self._thread = threading.Thread(
            target=self._step_logged, name="buildcoord-branch-watch", daemon=True
        )
        self._thread.start()
        return True

    def wait(self, timeout: float | None = None) -> None:
        """Wait for a running background pass to end."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _step_logged(self) -> None:
        try:
            for result in self.step():
                if result.outcome in ("queued", "failed"):
                    log.info("branch %s: %s %s", result.branch, result.outcome, result.detail)
        except Exception:
            log.exception("branch watch pass failed")

    def _poll_due(self, now: float) -> bool:
        interval = self.settings.branch_check_minutes * 60.0
        if interval <= 0:
            return False
        return self._last_poll is None or now - self._last_poll >= interval

    def _forget(self, names: Iterable[str]) -> None:
        """Drop waiting tips (the next poll looks at those branches again)."""
        with self._lock:
            for name in names:
                self._waiting.pop(name, None)

    def _wait_again(self, name: str, now: float) -> None:
        """Restart the quiet period of a waiting tip, if the branch has one."""
        with self._lock:
            waiting = self._waiting.get(name)
            if waiting is not None:
                self._waiting[name] = (waiting[0], now)

    def _waiting_due(self, now: float) -> set[str]:
        quiet = self.settings.branch_quiet_seconds
        with self._lock:
            return {name for name, (_, since) in self._waiting.items() if now - since >= quiet}

    # -- schedules -----------------------------------------------------------------------

    def _run_schedules(self, now: float) -> list[BranchCheck]:
        """Queue the tip of each enabled branch whose schedule is due; set the next time."""
        due: list[Branch] = []
        for branch in self.store.list_branches():
            cron = parse_schedule(branch.schedule) if branch.enabled else None
            if cron is None:
                continue
            current = branch.next_scheduled_at
            following = cron.next_after(from_epoch(now)).timestamp()
            if current is not None and current.timestamp() > now:
                continue
            expected = None if current is None else current.timestamp()
            # Compare-and-set: of two coordinators, only one fires this run. A run missed
            # while no coordinator ran fires once, not once per missed time.
            won = self.store.advance_schedule(branch.name, expected=expected, next_at=following)
            if won and current is not None:
                due.append(branch)
        tips = self._read_tips(due)
        results = []
        for branch in due:
            tip = self._tip_or_failure(branch, tips[branch.repo])
            if isinstance(tip, BranchCheck):
                results.append(tip)
            else:
                results.append(
                    self._queue_commit(branch, tip, why="schedule", trigger=TRIGGER_SCHEDULE)
                )
        return results

    # -- one look at each branch ---------------------------------------------------------

    def _auto_built(self, names: Sequence[str] | None) -> list[Branch]:
        if names is None:
            found = self.store.list_branches()
        else:
            # A name given twice is looked at once.
            found = [self.store.get_branch(name) for name in dict.fromkeys(names)]
        return [branch for branch in found if branch.enabled and branch.auto_build]

    def _check(self, chosen: list[Branch], *, quiet: float) -> list[BranchCheck]:
        tips = self._read_tips(chosen)
        results = []
        for branch in chosen:
            tip = self._tip_or_failure(branch, tips[branch.repo])
            if isinstance(tip, BranchCheck):
                results.append(tip)
            else:
                results.append(self._act_on_tip(branch, tip, quiet=quiet))
        return results

    def _read_tips(self, chosen: Iterable[Branch]) -> dict[str, _Tips]:
        """ls-remote each repository once (for all its branches), a few in parallel."""
        wanted: dict[str, list[str]] = {}
        for branch in chosen:
            wanted.setdefault(branch.repo, []).append(branch.name)
        if not wanted:
            return {}
        timeout = self.settings.branch_check_timeout_seconds

        def read(repo: str) -> _Tips:
            try:
                return git.branch_tips(repo, wanted[repo], timeout=timeout)
            except BuildcoordError as exc:
                return exc

        with ThreadPoolExecutor(min(PARALLEL_READS, len(wanted))) as pool:
            return dict(zip(wanted, pool.map(read, wanted), strict=True))

    def _tip_or_failure(self, branch: Branch, tips: _Tips) -> str | BranchCheck:
        """The branch's tip (recording a successful look), or the failure, recorded."""
        now = self.clock.now().timestamp()
        if isinstance(tips, BuildcoordError):
            error = str(tips)
        elif branch.name not in tips:
            error = f"branch {branch.name} does not exist in {branch.repo}"
        else:
            self.store.record_check_success(branch.name, now=now)
            return tips[branch.name]
        # A waiting tip that cannot be read now is looked at again after another quiet period,
        # not the next second; it is kept, not dropped: nothing may poll (branch_check_minutes
        # 0), and a push to a branch never read is built only while its tip waits.
        self._wait_again(branch.name, now)
        if self.store.record_check_failure(branch.name, error, now=now):
            self._alert(branch, error)
        return BranchCheck(branch.name, "failed", detail=error)

    def _alert(self, branch: Branch, error: str) -> None:
        try:
            self.messages.send(
                sender=ALERT_SENDER,
                recipient=BROADCAST,
                type="error",
                subject=f"branch {branch.name}: cannot read its repository",
                body=f"{error}\nBuilds of {branch.name} are not queued until it can be read.",
                by=SYSTEM,
            )
        except BuildcoordError:
            log.exception("could not send the alert for branch %s", branch.name)

    def _act_on_tip(
        self,
        branch: Branch,
        tip: str,
        *,
        quiet: float,
        first_builds: bool = False,
        unread: bool = False,
    ) -> BranchCheck:
        """Record a first tip (or with first_builds, treat it as new), wait for quiet, or queue.

        unread: the tip comes from a push, not from the repository; it is never queued here,
        only put to wait (the re-check reads the repository).
        """
        name = branch.name
        now = self.clock.now().timestamp()
        if branch.seen_commit is None and not first_builds:
            with self._lock:
                # Only a push puts a never-read branch's tip in waiting: its re-check after
                # the quiet period must build it, as the push itself would have.
                first_builds = name in self._waiting
        if branch.seen_commit is None and not first_builds:
            self.store.record_tip(name, expected=None, tip=tip, now=now)
            return BranchCheck(name, "recorded", tip, detail="first tip seen: recorded, not built")
        if tip == branch.seen_commit:
            with self._lock:
                self._waiting.pop(name, None)
            return BranchCheck(name, "unchanged", tip)
        if quiet > 0:
            with self._lock:
                waiting = self._waiting.get(name)
                if waiting is None or waiting[0] != tip:
                    self._waiting[name] = (tip, now)
                    since = now
                else:
                    since = waiting[1]
            if now - since < quiet or unread:
                left = max(0.0, quiet - (now - since))
                return BranchCheck(name, "waiting", tip, detail=f"queued if unchanged {left:.0f} s")
        return self._queue_commit(branch, tip, why="new tip", trigger=TRIGGER_PUSH)

    def _queue_commit(self, branch: Branch, tip: str, *, why: str, trigger: str) -> BranchCheck:
        """Queue tip once (the store refuses a second job at a commit), then record it seen.

        trigger: push for a new tip (webhook, poller, check-updates), schedule for a cron
        run, manual for queue-all.
        """
        name = branch.name
        with self._lock:
            self._waiting.pop(name, None)
        try:
            job = self.queue.submit(name, tip, once_per_commit=True, trigger=trigger, by=SYSTEM)
        except CommitKnown as known:
            result = BranchCheck(
                name, "known", tip, known.job_id, f"job {known.job_id} is {known.job_status}"
            )
        except NotFound:
            return BranchCheck(name, "ignored", tip, detail="the branch was removed")
        else:
            result = BranchCheck(name, "queued", tip, job.id, why)
        previous = branch.seen_commit
        now = self.clock.now().timestamp()
        moved = previous != tip and self.store.record_tip(name, expected=previous, tip=tip, now=now)
        if moved and result.outcome == "queued" and previous is not None:
            self._cancel_superseded(name, previous, tip)
        return result

    def _cancel_superseded(self, name: str, previous: str, tip: str) -> None:
        """Cancel the still-queued build of the tip that tip replaces, if a push queued it (a
        build queued by hand or by a schedule was asked for as such: it stays)."""
        if not self.settings.cancel_superseded_builds:
            return
        for job in self.store.list_jobs(statuses=["queued"], branch=name, limit=1000):
            if job.commit != previous or job.trigger != TRIGGER_PUSH:
                continue
            with contextlib.suppress(Conflict):  # it started meanwhile: let it run
                self.queue.cancel(
                    job.id, reason=f"superseded by {tip[:12]}", only_if_queued=True, by=SYSTEM
                )


def git_commit(value: str) -> str:
    """A full commit id from a payload (40 hex digits)."""
    commit = validation.commit_id(value)
    if len(commit) != 40:
        raise InvalidInput(f"{value!r} is not a full commit id")
    return commit
