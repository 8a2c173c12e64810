"""Maintenance with one leader: leader election, maintenance tasks, recurring jobs, the scheduler.

Never imports torch or the ML layers (checked by import-linter), so it starts in well under a second.
"""

from enchant_worker.scheduling.service import SchedulerService, start_scheduler

__all__ = ["SchedulerService", "start_scheduler"]
