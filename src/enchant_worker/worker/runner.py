"""The worker loop: lease → run the handler in a slot → heartbeat meanwhile → finish.

One thread leases; `concurrency` slot threads run jobs; a heartbeat thread renews leases; they take
turns on one connection (worker/bookkeeping.py). A listener thread wakes the loop on NOTIFY. A worker leases one job per free slot, and prefetches a few more per
slot only while its jobs finish in milliseconds (short jobs pay one round trip per batch, and long jobs
are never held back from other workers). Completions of short jobs are written in batches.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue as stdqueue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import psycopg

from enchant_worker.config import Settings
from enchant_worker.db.connection import Connection, Database, one
from enchant_worker.domain.jobs import Job
from enchant_worker.errors import DatabaseUnavailable, InvalidJob, JobCancelled, Preempted
from enchant_worker.intake import Rechecks
from enchant_worker.intake.tiers import load_tiers
from enchant_worker.queue import JobQueue, Lease
from enchant_worker.queue.affinity import Affinity, Warm
from enchant_worker.queue.fairness import FairShare
from enchant_worker.queue.storable import checked_json, storable_text
from enchant_worker.sql import q as q_sql
from enchant_worker.worker import device
from enchant_worker.worker.bookkeeping import SharedQueue
from enchant_worker.worker.context import JobContext
from enchant_worker.worker.heartbeat import Heartbeat
from enchant_worker.worker.listener import Listener, host_folder
from enchant_worker.worker.polling import AdaptivePoll
from enchant_worker.worker.registry import Handler, Registry

log = logging.getLogger(__name__)
T = TypeVar("T")

FAST_JOB_S = 0.02  # below this mean run time, a worker prefetches up to a handler's batch_size
ACK_FLUSH_S = 0.05  # completions of short jobs wait at most this long to be written together
CANCEL_WAIT_S = 5.0  # after the grace period, how long handlers get to honour the shutdown cancel
PREEMPT_CHECK_S = 2.0  # a long job asks at every step whether to yield; the database, this often
UNSTORED_OUTCOME = "the worker could not store this job's outcome (see the worker's log)"


# What became of a handler's run: `release` hands the job back unspent (shutdown, preempted), `lost`
# means another worker holds it now.
OutcomeKind = Literal["completed", "failed", "cancelled", "release", "lost"]


@dataclass
class Outcome:
    kind: OutcomeKind
    result: dict[str, Any] | None = None
    error: str | None = None
    retry: bool = True


class Worker:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        registry: Registry,
        *,
        job_types: Iterable[str] | None = None,
        concurrency: int = 1,
        burst: bool = False,
        worker_id: str | None = None,
    ):
        if concurrency < 1:
            raise InvalidJob(f"concurrency: must be at least 1, got {concurrency}")
        self.db = db
        self.settings = settings
        self.handlers: dict[str, Handler[Any]] = {h.job_type: h for h in registry.select(job_types)}
        self.concurrency = concurrency
        self.burst = burst
        self.worker_id = worker_id or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._held: dict[Lease, JobContext[Any]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._grace_deadline: float | None = None
        self._busy = 0
        self._chunks: stdqueue.Queue[list[tuple[Lease, Job]] | None] = stdqueue.Queue()
        self._local = threading.local()
        self._mean_job_s: float | None = None  # the mean run time; slow (no prefetch) until one has run
        self._counts = [0, 0]  # completed, failed since the last heartbeat
        self._progress_reported: Callable[[], None] = lambda: None
        self._poll = AdaptivePoll(settings.poll_min_interval_s, settings.poll_interval_s)
        self._fair_share = _fair_share(settings)  # read once: a tiers file mistake stops the start
        self._affinity = Affinity(getattr(settings, "affinity_max_wait_s", 30.0))
        # Leasing, finishing and the heartbeat share one connection (the connection budget).
        self._shared = SharedQueue(self._open_queue)
        self._resident_hooks = [h.resident for h in self.handlers.values() if h.resident is not None]
        # Cross-job batching: jobs per GPU call, for the handlers that can run several jobs at once.
        self._batch_size = (
            device.generation_batch_size(
                getattr(settings, "generation_batch_size", None), getattr(settings, "device", "auto")
            )
            if any(h.run_batch for h in self.handlers.values())
            else 1
        )

    # -- public ----------------------------------------------------------------------------------

    def run(self) -> None:
        """Runs until stop() (or, with burst, until nothing is runnable)."""
        self._with_db(
            lambda q: q.register_worker(
                self.worker_id,
                host=socket.gethostname(),
                pid=os.getpid(),
                job_types=list(self.handlers),
                device=device.describe(any(h.gpu for h in self.handlers.values())),
                concurrency=self.concurrency,
            )
        )
        log.info(
            "worker %s serving %s with %d slot(s)%s",
            self.worker_id,
            ", ".join(self.handlers),
            self.concurrency,
            f", up to {self._batch_size} jobs per generation call" if self._batch_size > 1 else "",
        )
        slots = [
            threading.Thread(target=self._slot, name=f"slot-{i}", daemon=True)
            for i in range(self.concurrency)
        ]
        for slot in slots:
            slot.start()
        # Behind a pooler without a direct URL nobody can LISTEN: the loop polls (cancellations reach a
        # running job through the heartbeat's answer instead).
        session_url = self.db.session_url
        listener = (
            Listener(
                self.db,
                self.handlers,
                on_work=self._wake.set,
                on_cancel=self._cancel_requested,
                host_dir=host_folder(session_url),
            )
            if session_url
            else contextlib.nullcontext()
        )
        heartbeat = Heartbeat(
            self.db,
            self.settings,
            self.worker_id,
            held=self._snapshot,
            counters=self._take_counts,
            status=self._status,
            resident=self._warm,
            shared=self._shared,
        )
        self._progress_reported = heartbeat.wake.set  # progress reaches the job row within a beat
        with listener, heartbeat:
            self._loop()
            self._shut_down()
            for _ in slots:
                self._chunks.put(None)
        try:
            self._with_db(
                lambda q: q.worker_heartbeat(
                    self.worker_id, [], status="stopped", completed=self._counts[0], failed=self._counts[1]
                )
            )
        except DatabaseUnavailable as exc:
            log.warning("could not mark the worker stopped: %s", exc)
        self._shared.close()
        log.info("worker %s stopped", self.worker_id)

    def stop(self, *, now: bool = False) -> None:
        """Stop leasing; running jobs get the grace period (none with now=True), then are handed back."""
        grace = 0.0 if now else self.settings.shutdown_grace_s
        deadline = time.monotonic() + grace
        self._grace_deadline = min(self._grace_deadline or deadline, deadline)
        self._stopping.set()
        self._wake.set()

    # -- leasing ---------------------------------------------------------------------------------

    def _loop(self) -> None:
        idle = False  # the last lease found nothing: poll with the index-only probe until work shows up
        while not self._stopping.is_set():
            free = self.concurrency - self._busy
            if free <= 0:
                self._wake.wait(self.settings.poll_interval_s)
                self._wake.clear()
                continue
            woken = self._wake.is_set()
            self._wake.clear()
            if idle and not woken and not self._with_db(self._runnable):
                self._wake.wait(self._poll.next_wait())  # nothing runnable: the cheap probe was the poll
                continue
            prefetch = self._prefetch()
            # One job per free slot starts at once; a prefetched batch is held until each job's turn.
            limit, start = free * prefetch, prefetch == 1
            warm = self._warm()
            jobs = self._with_db(
                lambda q: q.lease(self.worker_id, self.handlers, limit, start=start, warm=warm)  # noqa: B023
            )
            if not jobs:
                if self.burst and self._busy == 0:
                    return
                idle = True
                self._wake.wait(self._poll.next_wait())
                continue
            idle = False
            self._poll.found_work()
            self._dispatch(jobs, free)

    def _runnable(self, queue: JobQueue) -> bool:
        return bool(
            one(queue.conn.execute(q_sql("runnable_probe"), {"types": list(self.handlers)}))["runnable"]
        )

    def _warm(self) -> Warm:
        """What the handlers have loaded now, as job keys: the lease prefers jobs that need nothing more."""
        warm = Warm()
        for hook in self._resident_hooks:
            try:
                warm |= hook(self.settings)
            except Exception:  # a preference must never stop leasing
                log.exception("could not read what is resident; leasing without a preference")
        return warm

    def _prefetch(self) -> int:
        if self._mean_job_s is None or self._mean_job_s >= FAST_JOB_S:
            return 1
        return min(h.batch_size for h in self.handlers.values())

    def _hold(self, jobs: list[Job]) -> list[tuple[Lease, Job]]:
        pairs = [(Lease.of(job), job) for job in jobs]
        with self._lock:
            for lease, job in pairs:
                self._held[lease] = self._context(job)
        return pairs

    def _dispatch(self, jobs: list[Job], free: int) -> None:
        pairs = self._hold(jobs)
        slots = min(free, len(pairs))
        size = -(-len(pairs) // slots)
        for i in range(slots):
            with self._lock:
                self._busy += 1
            self._chunks.put(pairs[i * size : (i + 1) * size])

    def _context(self, job: Job) -> JobContext[Any]:
        handler = self.handlers[job.job_type]
        ctx: JobContext[Any] = JobContext[Any](
            job=job,
            log=logging.getLogger(f"enchant_worker.job.{job.job_type}"),
            connect=self._handler_connection,
            settings=self.settings,
            on_progress=self._progress_reported,
        )
        if handler.gpu:
            ctx.preempt_check = _every(PREEMPT_CHECK_S, lambda: self._should_yield(job))
        return ctx

    # -- running ---------------------------------------------------------------------------------

    def _slot(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            mine = list(chunk)  # the jobs this slot holds, refills included
            try:
                self._run_chunk(mine)
            except Exception as exc:  # never lose a slot, and never keep renewing a job nobody runs
                log.exception("slot failed; settling the jobs it held")
                self._settle([le for le, _ in mine], exc)
            finally:
                with self._lock:
                    self._busy -= 1
                self._wake.set()

    def _run_chunk(self, mine: list[tuple[Lease, Job]]) -> None:
        """Runs a slot's jobs one after another. While jobs are short, the slot refills itself: the
        completions of a batch and the lease of the next go in one transaction. `mine` always lists
        every job the slot holds (it is updated in place on a refill), for _settle."""
        chunk = list(mine)
        while chunk:
            self._local.rechecks = Rechecks(
                self._handler_connection, self.settings
            )  # each user read once a lease
            done: list[tuple[Lease, dict[str, Any] | None]] = []
            first_done = 0.0
            for i, (lease, job) in enumerate(chunk):
                if self._stopping.is_set():
                    self._finish_release([le for le, _ in chunk[i:]])
                    break
                started = time.monotonic()
                if self._batch_size > 1 and self.handlers[job.job_type].run_batch:
                    ran = self._execute_batch(lease, job, mine)
                else:
                    ctx = self._held[lease]
                    ran = [(lease, job, ctx, self._execute(lease, job, ctx))]
                self._mean_job_s = _mean(self._mean_job_s, time.monotonic() - started)
                for lease_, job_, ctx, outcome in ran:
                    ctx.outcome = outcome
                    if outcome.kind == "completed":
                        if not done:
                            first_done = time.monotonic()
                        done.append((lease_, outcome.result))
                        if time.monotonic() - first_done >= ACK_FLUSH_S:
                            self._finish_completed(done)
                            done = []
                    else:
                        self._finish_other(lease_, job_, ctx, outcome)
            chunk = self._finish_and_refill(done)
            mine[:] = [pair for pair in mine if pair[0] in self._held] + chunk

    def _finish_and_refill(self, done: list[tuple[Lease, dict[str, Any] | None]]) -> list[tuple[Lease, Job]]:
        prefetch = self._prefetch()
        if not done or prefetch == 1 or self._stopping.is_set():
            self._finish_completed(done)
            return []
        try:
            written, jobs = self._with_db(
                lambda q: q.complete_and_lease(done, self.worker_id, self.handlers, prefetch, self._warm())
            )
        except Exception as exc:
            if not _unstorable(exc):
                raise
            self._complete_each(done)  # the transaction rolled back: nothing was leased either
            return []
        self._report_unwritten(done, written)
        self._forget([le for le, _ in done], completed=len(written))
        return self._hold(jobs)

    def _execute(self, lease: Lease, job: Job, ctx: JobContext[Any]) -> Outcome:
        """Runs the job's handler, with one INFO line when it starts and one when it ends."""
        started = time.monotonic()
        log.info(
            "job %s started: %s, user %s, attempt %d of %d",
            job.id,
            job.job_type,
            job.user_id or "-",
            job.attempts,
            job.max_attempts,
        )
        outcome = self._run_handler(lease, job, ctx)
        log.info(
            "job %s ended: %s, user %s, attempt %d, %.3fs, %s%s",
            job.id,
            job.job_type,
            job.user_id or "-",
            job.attempts,
            time.monotonic() - started,
            outcome.kind,
            f" ({outcome.error.splitlines()[0][:200]})" if outcome.error else "",
        )
        return outcome

    def _execute_batch(
        self, head: Lease, job: Job, mine: list[tuple[Lease, Job]]
    ) -> list[tuple[Lease, Job, JobContext[Any], Outcome]]:
        """Cross-job batching: leases up to batch size - 1 companions of the head job (same batch key) in
        one statement, and runs them all through the handler's run_batch. Returns (lease, job, context,
        outcome) for each; every job's outcome is its own."""
        companions = self._hold(
            self._with_db(lambda q: q.lease_companions(self.worker_id, head, self._batch_size - 1))
        )
        mine.extend(companions)  # held by this slot from now on (a failed slot settles them too)
        members = [(head, job), *companions]
        started = time.monotonic()
        for _, member in members:
            log.info(
                "job %s started: %s, user %s, attempt %d of %d, batch of %d with job %s",
                member.id,
                member.job_type,
                member.user_id or "-",
                member.attempts,
                member.max_attempts,
                len(members),
                job.id,
            )
        outcomes = self._run_batch(members)
        for (_, member), outcome in zip(members, outcomes, strict=True):
            log.info(
                "job %s ended: %s, user %s, attempt %d, %.3fs, %s%s",
                member.id,
                member.job_type,
                member.user_id or "-",
                member.attempts,
                time.monotonic() - started,
                outcome.kind,
                f" ({outcome.error.splitlines()[0][:200]})" if outcome.error else "",
            )
        return [
            (lease, member, self._held[lease], outcome)
            for (lease, member), outcome in zip(members, outcomes, strict=True)
        ]

    def _run_batch(self, members: list[tuple[Lease, Job]]) -> list[Outcome]:
        """Each job is checked on its own (validation, rights): one refused fails alone, and the others
        run together in one run_batch call."""
        handler = self.handlers[members[0][1].job_type]
        outcomes: dict[Lease, Outcome] = {}
        ready: list[tuple[Lease, Job, JobContext[Any]]] = []
        for lease, job in members:
            ctx = self._held[lease]
            try:
                if (lost := self._begin(lease, job, ctx, handler)) is not None:
                    outcomes[lease] = lost
                else:
                    ready.append((lease, job, ctx))
            except Exception as exc:
                outcomes[lease] = self._error_outcome(job, ctx, exc)
        try:
            answers = handler.run_batch([ctx for _, _, ctx in ready]) if ready else []  # type: ignore[misc]
        except Exception as exc:  # the batch itself broke: each job that was in it failed with it
            answers = [exc] * len(ready)
        for (lease, job, ctx), answer in zip(ready, answers, strict=True):
            outcomes[lease] = (
                self._error_outcome(job, ctx, answer)
                if isinstance(answer, Exception)
                else self._completed(ctx, answer or {})
            )
        for lease, _ in members:
            self._held[lease].finishing = True
        return [outcomes[lease] for lease, _ in members]

    def _run_handler(self, lease: Lease, job: Job, ctx: JobContext[Any]) -> Outcome:
        handler = self.handlers[job.job_type]
        try:
            if (lost := self._begin(lease, job, ctx, handler)) is not None:
                return lost
            return self._completed(ctx, handler.run(ctx) or {})
        except Exception as exc:
            return self._error_outcome(job, ctx, exc)
        finally:
            ctx.finishing = True  # from here, a job missing from a heartbeat's answer was finished by us

    def _begin(self, lease: Lease, job: Job, ctx: JobContext[Any], handler: Handler[Any]) -> Outcome | None:
        """What runs before a handler: the cancel flag, the start, validation and the rights check
        (raising what the handler would). Returns a "lost" outcome when the lease is gone."""
        if ctx.is_cancelled():
            raise JobCancelled()
        if not job.run_started and (job.unstarted_reaps or job.crashes):
            # A prefetched job that was in a dead worker's hands before: if it is what kills
            # workers, the attempt must be spent, so record that it runs before it does.
            if not self._with_db(lambda q: q.mark_started(lease)):
                return Outcome("lost")
        ctx.started = True
        if handler.timeout_s:
            ctx.timeout_s, ctx.deadline = handler.timeout_s, time.monotonic() + handler.timeout_s
        ctx.spec = handler.validate(job.metadata) if handler.validate else job.metadata
        # The enqueue checks again, for the job's user: the row may come from plain SQL, or a right
        # may have been lost since (AccessDenied is an InvalidJob: the job fails, never retried).
        limits = self._local.rechecks.check(job)
        if limits.max_run_s and (ctx.timeout_s is None or limits.max_run_s < ctx.timeout_s):
            ctx.timeout_s, ctx.deadline = limits.max_run_s, time.monotonic() + limits.max_run_s
        return None

    @staticmethod
    def _completed(ctx: JobContext[Any], result: dict[str, Any]) -> Outcome:
        # A result that cannot be stored is the handler's error, not ours; it would fail again.
        if problem := checked_json(result):
            return Outcome("failed", error=f"the handler's result cannot be stored: {problem}", retry=False)
        if ctx.timed_out or ctx.cancel_reason == "lease_lost":
            return Outcome("lost")
        return Outcome("completed", result)

    @staticmethod
    def _error_outcome(job: Job, ctx: JobContext[Any], exc: Exception) -> Outcome:
        if isinstance(exc, InvalidJob):
            return Outcome("failed", error=f"invalid input: {_text_of(exc)}", retry=False)
        if isinstance(exc, Preempted):
            return Outcome("release", result={"preempted": _text_of(exc)})
        if isinstance(exc, JobCancelled):
            if ctx.timed_out or ctx.cancel_reason == "lease_lost":
                return Outcome("lost")
            return Outcome("release" if ctx.cancel_reason == "shutdown" else "cancelled")
        ctx.log.error("job %s failed", job.id, exc_info=exc)
        return Outcome("failed", error=f"{type(exc).__name__}: {_text_of(exc)}", retry=True)

    # -- finishing -------------------------------------------------------------------------------
    #
    # A write that fails because of what it would store (a psycopg DataError of any kind, a value that
    # cannot be encoded) fails the job with a clear message instead: handing the job back would run it
    # again and fail the same way, for ever.

    def _finish_completed(self, done: list[tuple[Lease, dict[str, Any] | None]]) -> None:
        if not done:
            return
        try:
            written = self._with_db(lambda q: q.complete_many(done))
        except Exception as exc:
            if not _unstorable(exc):
                raise
            self._complete_each(done)
            return
        self._report_unwritten(done, written)
        self._forget([le for le, _ in done], completed=len(written))

    def _complete_each(self, done: list[tuple[Lease, dict[str, Any] | None]]) -> None:
        """Completes jobs one by one after a batch could not be stored: a result that cannot be
        stored fails its own job, and the others complete."""
        for lease, result in done:
            try:
                written = self._with_db(lambda q: q.complete_many([(lease, result)]))  # noqa: B023
            except Exception as exc:
                if not _unstorable(exc):
                    raise
                self._fail_for_good(lease, f"the handler's result could not be stored: {_db_message(exc)}")
                continue
            self._report_unwritten([(lease, result)], written)
            self._forget([lease], completed=len(written))

    def _fail_for_good(self, lease: Lease, error: str, attempt: int = 1) -> str | None:
        """Fails a job without retry; if even the message cannot be stored, with a fixed one."""
        for message in (error, UNSTORED_OUTCOME):
            try:
                status = self._with_db(lambda q: q.fail(lease, message, attempt=attempt, retry=False))  # noqa: B023
            except Exception as exc:
                if not _unstorable(exc):
                    raise
                log.error("job %s: could not store its failure (%s)", lease.job_id, exc)
                continue
            if status is None:
                log.warning(
                    "job %s failed (%s) but its lease was lost; nothing was recorded", lease.job_id, error
                )
            self._forget([lease], failed=1)
            return status
        log.error("job %s: nothing could be recorded; its lease will expire", lease.job_id)
        self._forget([lease], failed=1)
        return None

    @staticmethod
    def _report_unwritten(done: list[tuple[Lease, Any]], written: set[uuid.UUID]) -> None:
        for lease, _ in done:
            if lease.job_id not in written:
                log.warning(
                    "job %s finished but its lease was lost; the result was not recorded", lease.job_id
                )

    def _finish_other(self, lease: Lease, job: Job, ctx: JobContext[Any], outcome: Outcome) -> None:
        if outcome.kind == "failed":
            try:
                status = self._with_db(
                    lambda q: q.fail(lease, outcome.error or "", attempt=job.attempts, retry=outcome.retry)
                )
            except Exception as exc:
                if not _unstorable(exc):
                    raise
                log.error("job %s: could not store its error (%s)", job.id, exc)
                self._fail_for_good(lease, UNSTORED_OUTCOME, job.attempts)
                return
            if status is None:
                log.warning(
                    "job %s failed (%s) but its lease was lost; nothing was recorded", job.id, outcome.error
                )
            else:
                log.warning(
                    "job %s (%s) failed: %s%s",
                    job.id,
                    job.job_type,
                    outcome.error,
                    "; will retry" if status == "pending" else "",
                )
            self._forget([lease], failed=1)
        elif outcome.kind == "cancelled":
            self._with_db(lambda q: q.finish_cancelled(lease))
            self._forget([lease])
        elif outcome.kind == "release":
            self._with_db(
                lambda q: q.release([lease], {lease.job_id: outcome.result} if outcome.result else None)
            )
            self._forget([lease])
        else:  # lost: another worker owns the job now; write nothing
            log.warning("job %s stopped after losing its lease", job.id)
            self._forget([lease])

    def _finish_release(self, leases: list[Lease]) -> None:
        with self._lock:
            for lease in leases:
                if ctx := self._held.get(lease):
                    ctx.finishing = True  # handed back by us, not lost: the heartbeat stays quiet
        self._with_db(lambda q: q.release(leases))
        self._forget(leases)

    def _settle(self, leases: list[Lease], exc: BaseException) -> None:
        """After a slot failed unexpectedly: jobs that completed are completed, other jobs it had
        started fail (the attempt is spent; retried while attempts remain), and those it never started
        go back. No job is left held, renewed by the heartbeat but run by nobody."""
        held = self._snapshot()
        leases = [le for le in leases if le in held]
        done = [
            (le, outcome.result)
            for le in leases
            if (outcome := held[le].outcome) is not None and outcome.kind == "completed"
        ]
        started = [le for le in leases if held[le].started and le not in dict(done)]
        unstarted = [le for le in leases if not held[le].started]
        try:
            self._finish_completed(done)
        except Exception as second:
            log.error("could not record %d completed job(s): %s", len(done), second)
            self._forget([le for le, _ in done])
        for lease in started:
            ctx = held[lease]
            error = f"the worker failed while finishing this job: {type(exc).__name__}: {_text_of(exc)}"
            try:
                self._with_db(lambda q: q.fail(lease, error, attempt=ctx.job.attempts, retry=True))  # noqa: B023
            except Exception as second:  # the lease then expires; the reaper spends the attempt if it knew
                log.error("could not record the failure of job %s: %s", lease.job_id, second)
            self._forget([lease], failed=1)
        self._release_quietly(unstarted)

    def _release_quietly(self, leases: list[Lease]) -> None:
        """Hands jobs back on a path that must not raise (a failed slot, the end of shutdown)."""
        if not leases:
            return
        try:
            self._finish_release(leases)
        except Exception as exc:  # the leases then expire and are reaped
            log.error("could not hand back %d job(s): %s", len(leases), exc)
            self._forget(leases)

    def _forget(self, leases: list[Lease], *, completed: int = 0, failed: int = 0) -> None:
        with self._lock:
            for lease in leases:
                self._held.pop(lease, None)
            self._counts[0] += completed
            self._counts[1] += failed

    # -- shutdown --------------------------------------------------------------------------------

    def _shut_down(self) -> None:
        """Waits for running jobs until the grace deadline, then asks them to stop and hands back
        whatever is still held, without spending an attempt."""
        deadline = self._grace_deadline or time.monotonic()
        while self._busy and time.monotonic() < deadline:
            self._wake.wait(min(0.2, max(0.0, deadline - time.monotonic())))
            self._wake.clear()
            deadline = self._grace_deadline or deadline
        if self._busy:
            log.warning("grace period over; handing back %d running job(s)", len(self._held))
            for ctx in self._snapshot().values():
                ctx.cancel("shutdown")
            until = time.monotonic() + CANCEL_WAIT_S
            while self._busy and time.monotonic() < until:
                time.sleep(0.05)
        self._release_quietly(list(self._snapshot()))

    # -- helpers ---------------------------------------------------------------------------------

    def _snapshot(self) -> dict[Lease, JobContext[Any]]:
        with self._lock:
            return dict(self._held)

    def _take_counts(self) -> tuple[int, int]:
        with self._lock:
            (completed, failed), self._counts = self._counts, [0, 0]
        return completed, failed

    def _status(self) -> str:
        return "stopping" if self._stopping.is_set() else "running"

    def _cancel_requested(self, job_id: uuid.UUID) -> None:
        for lease, ctx in self._snapshot().items():
            if lease.job_id == job_id:
                ctx.cancel("cancel_requested")

    def _should_yield(self, job: Job) -> bool:
        """Preemption: is more urgent work of the other types this worker serves waiting too long?"""
        others = [t for t in self.handlers if t != job.job_type]
        if not others:
            return False
        # a worker whose heartbeat is older than a lease is not counted as idle
        return self._with_db(
            lambda q: q.should_yield(job, others, self.settings.preempt_after_s, self.settings.lease_seconds)
        )

    @contextmanager
    def _handler_connection(self) -> Iterator[Connection]:
        """The slot thread's own connection for handlers (apart from the queue's, so a handler that
        breaks its connection cannot break the job's bookkeeping)."""
        conn = getattr(self._local, "handler_conn", None)
        if conn is None or conn.closed or conn.broken:
            conn = self._local.handler_conn = self.db.open()
        try:
            yield conn
        finally:
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.close()  # left mid-transaction: start clean next time

    def _open_queue(self) -> JobQueue:
        conn = self.db.open()
        if not self.db.pooled:  # a session SET would leak to other clients through a pooler
            conn.execute(q_sql("worker_session"))
        return JobQueue(
            conn,
            lease_s=self.settings.lease_seconds,
            retry_base_s=self.settings.retry_base_s,
            retry_max_s=self.settings.retry_max_s,
            fair_share=self._fair_share,
            affinity=self._affinity,
        )

    def _with_db(self, action: Callable[[JobQueue], T]) -> T:
        """Runs a queue statement, reconnecting while the database is away; once the worker is stopping
        and its grace period is over, it gives up (the leases then expire and are reaped)."""
        while True:
            try:
                result = self._shared.run(action)
                self._local.delay = 0.5
                return result
            except (psycopg.OperationalError, psycopg.InterfaceError, DatabaseUnavailable) as exc:
                if isinstance(exc, psycopg.errors.ProgramLimitExceeded):
                    raise  # a value too large to store: retrying cannot help
                if self._stopping.is_set() and time.monotonic() > (self._grace_deadline or 0.0):
                    raise DatabaseUnavailable(f"giving up while stopping: {exc}") from exc
                self._db_trouble(exc)

    def _db_trouble(self, exc: Exception) -> None:
        self._shared.close()
        delay = getattr(self._local, "delay", 0.5)
        log.warning("database trouble (%s); retrying in %.1fs", str(exc).strip(), delay)
        time.sleep(delay)
        self._local.delay = min(delay * 2, 10.0)


def _fair_share(settings: Settings) -> FairShare | None:
    """The fair lease's weights and caps from the tiers file; None when ENCHANT_QUEUE_FAIR_SHARE is off."""
    if not getattr(settings, "queue_fair_share", True):
        return None
    path = getattr(settings, "tiers_path", None)
    max_wait_s = getattr(settings, "queue_fair_share_max_wait_s", 60.0)
    return (
        FairShare.from_tiers(load_tiers(path), max_wait_s)
        if path is not None
        else FairShare(max_wait_s=max_wait_s)
    )


def _text_of(exc: BaseException) -> str:
    """An exception's message as Postgres can store it (NUL dropped, lone surrogates escaped)."""
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not keep the job from failing
        text = repr(exc)
    return storable_text(text)


def _db_message(exc: BaseException) -> str:
    return storable_text(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, 500)


def _unstorable(exc: BaseException) -> bool:
    """Did a write fail because of what it would store (not because the database is away)? Such a
    write fails again however often it is retried."""
    if isinstance(exc, ValueError | TypeError):  # UnicodeEncodeError, values psycopg cannot adapt
        return True
    if isinstance(exc, psycopg.errors.ProgramLimitExceeded):
        return True
    return isinstance(exc, psycopg.DatabaseError) and not isinstance(exc, psycopg.OperationalError)


def _every(interval_s: float, check: Callable[[], bool]) -> Callable[[], bool]:
    """`check`, asked at most once per interval; between asks the last answer stands."""
    at, answer = -interval_s, False

    def ask() -> bool:
        nonlocal at, answer
        now = time.monotonic()
        if now - at >= interval_s:
            at, answer = now, check()
        return answer

    return ask


def _mean(mean: float | None, seconds: float) -> float:
    """The running mean of job run times (each new one weighs half). The first job sets it: a worker
    whose first job was short prefetches from its second lease on (a burst of short jobs on an idle
    queue no longer goes one lease per job while a made-up slow start decays)."""
    return seconds if mean is None else 0.5 * mean + 0.5 * seconds
