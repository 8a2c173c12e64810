"""The scheduler: APScheduler runs the maintenance tasks and recurring jobs, on the leader only.

Every process runs a SchedulerService; the LeaderElection decides which one has jobs in its APScheduler.
On election the leader adds every task and recurring job, and runs at once the latest tick of each task
(and of each recurring job missed less than ENCHANT_RECURRING_GRACE_S ago) that nobody ran: a new leader
picks up where the old one died. On losing the lock it removes them. Each run first claims its tick in
maintenance_runs, so no tick runs twice, even while an old leader that lost its session finishes a run.

    service = start_scheduler(db, settings)   # for `serve`: runs in background threads
    ...
    service.stop()                             # waits for running tasks, then hands leadership over
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from datetime import UTC, datetime

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from enchant_worker.config import Settings
from enchant_worker.db.connection import Database
from enchant_worker.scheduling import tasks
from enchant_worker.scheduling.leader import LeaderElection
from enchant_worker.scheduling.schedule import RecurringJob, ScheduleConfig, Timing, load_schedule

log = logging.getLogger(__name__)

TASK_THREADS = 4  # maintenance runs at once at most (each holds one connection while it runs)


class TickTrigger(BaseTrigger):
    """An APScheduler trigger firing at the ticks of an Every or Cron timing."""

    def __init__(self, timing: Timing):
        self.timing = timing

    def get_next_fire_time(self, previous_fire_time, now):
        return self.timing.next_after(previous_fire_time or now)

    def __str__(self) -> str:
        return str(self.timing)


def load_config(settings: Settings) -> ScheduleConfig:
    """The schedule (defaults + the file), refused with the line named if anything in it is wrong."""
    return load_schedule(
        settings.schedule_path,
        tasks.default_timings(settings),
        timezone=settings.schedule_timezone,
        task_options=tasks.task_options(),
    )


class SchedulerService:
    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        config: ScheduleConfig | None = None,
        identity: str | None = None,
    ):
        self.db = db
        self.settings = settings
        self.config = config or load_config(settings)
        self.identity = (
            identity or f"enchant-scheduler:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        )
        self._aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(TASK_THREADS)},
            # A late tick runs once (coalesce), however late; one run of a task at a time.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        # A session (the server itself) holds the advisory lock; behind a pooler without one, a lease row.
        self.election = LeaderElection(
            db.session_url or db.url,
            self.identity,
            check_s=settings.leader_check_s,
            on_elected=self._on_elected,
            on_deposed=self._on_deposed,
            lease_only=db.session_url is None,
        )
        self._started = False

    @property
    def is_leader(self) -> bool:
        return self.election.is_leader

    def start(self) -> SchedulerService:
        log.info(
            "scheduler %s starting: %d task(s) (%s), %d recurring job(s)%s",
            self.identity,
            len(self.config.tasks),
            ", ".join(f"{n} {t}" for n, t in self.config.tasks.items()),
            len(self.config.jobs),
            f" from {self.config.source}" if self.config.source else "",
        )
        self._aps.start()
        self.election.start()
        self._started = True
        return self

    def stop(self) -> None:
        """Stops scheduling, lets running tasks finish, then releases leadership."""
        if not self._started:
            return
        self._started = False
        self._aps.remove_all_jobs()
        self._aps.shutdown(wait=True)
        self.election.stop()
        log.info("scheduler %s stopped", self.identity)

    def run_forever(self, stop: threading.Event) -> None:
        """For `enchant-worker scheduler`: runs until `stop` is set."""
        self.start()
        try:
            while not stop.wait(1.0):
                pass
        finally:
            self.stop()

    # -- leadership ------------------------------------------------------------------------------

    def _on_elected(self) -> None:
        now = datetime.now(UTC)
        for name, timing in self.config.tasks.items():
            # Run the current tick at once (it is skipped if the previous leader ran it).
            self._aps.add_job(
                self._fire_task,
                TickTrigger(timing),
                args=[name, timing],
                id=f"task:{name}",
                name=name,
                replace_existing=True,
                next_run_time=now,
            )
        for job in self.config.jobs:
            missed = (now - job.timing.latest(now)).total_seconds()
            first = now if missed <= self.settings.recurring_grace_s else job.timing.next_after(now)
            self._aps.add_job(
                self._fire_job,
                TickTrigger(job.timing),
                args=[job],
                id=f"job:{job.name}",
                name=job.name,
                replace_existing=True,
                next_run_time=first,
            )

    def _on_deposed(self) -> None:
        try:
            self._aps.remove_all_jobs()
        except Exception:  # already shut down
            pass

    # -- runs ------------------------------------------------------------------------------------

    def _fire_task(self, name: str, timing: Timing) -> None:
        tick = timing.latest(datetime.now(UTC))
        task = tasks.TASKS[name]
        ctx = tasks.TaskContext(self.db, self.settings, tick, self.config.options.get(name, {}))
        self._fire(name, tick, lambda: task.run(ctx))

    def _fire_job(self, job: RecurringJob) -> None:
        tick = job.timing.latest(datetime.now(UTC))
        self._fire(f"job:{job.name}", tick, lambda: tasks.enqueue_recurring(self.db, job, tick))

    def _fire(self, task: str, tick: datetime, action) -> None:
        if not self.is_leader:
            return
        try:
            result = tasks.run_claimed(self.db, task, tick, action, ran_by=self.identity)
        except Exception:
            log.exception("maintenance %s (tick %s) failed", task, tick.isoformat())
            return
        if result is not None:
            log.debug("ran %s tick %s by %s: %s", task, tick.isoformat(), self.identity, result)


def start_scheduler(db: Database, settings: Settings) -> SchedulerService:
    """Starts a scheduler in background threads (for `serve`); call `.stop()` on shutdown."""
    return SchedulerService(db, settings).start()
