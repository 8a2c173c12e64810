"""The one progress display of every command that waits on work (`generate`, `train`, `export`): a bar,
the stage the job reported, step/total, loss and s/step where training gives them, and the ETA.

On a terminal the line is redrawn in place; elsewhere (logs, CI) a line is printed only when the stage
changes or the bar passes a quarter, so a captured log stays short.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from enchant_worker.domain.jobs import FINISHED
from enchant_worker.sql import q

BAR_WIDTH = 30
POLL_INTERVAL_S = 0.25
NO_WORKER_HINT_AFTER_S = 5.0
LIVE_WORKER_S = 60


def progress_line(status: str, percent: float, info: dict[str, Any] | None = None) -> str:
    """`[#########.....................]  30% training step 12/40 loss 0.1234 1.20 s/step ETA 0:34`; a
    waiting job says `queued` (with the step a paused run reached), a finished one its state."""
    p = info if isinstance(info, dict) else {}
    if status == "pending":
        return (
            f"queued (paused at step {p['step']}/{p['total']})"
            if p.get("step") and p.get("total")
            else "queued"
        )
    if status in FINISHED:
        return str(status)
    pct = max(0, min(100, int(percent)))
    filled = BAR_WIDTH * pct // 100
    parts = [f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {pct:3d}%"]
    if p.get("stage"):
        parts.append(str(p["stage"]))
    if p.get("step") is not None and p.get("total"):
        parts.append(f"{p.get('unit') or 'step'} {p['step']}/{p['total']}")
    if isinstance(p.get("loss"), int | float):
        parts.append(f"loss {p['loss']:.4f}")
    if isinstance(p.get("s_per_step"), int | float):
        parts.append(f"{p['s_per_step']:.2f} s/step")
    if isinstance(p.get("eta_s"), int | float):
        eta = int(p["eta_s"])
        parts.append(f"ETA {eta // 60}:{eta % 60:02d}")
    return " ".join(parts)


class Display:
    """Writes progress lines to a stream: redrawn in place on a terminal, else only the telling ones."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last = ""
        self._last_key: tuple[Any, ...] = ()

    def show(self, status: str, percent: float, info: dict[str, Any] | None = None) -> None:
        line = progress_line(status, percent, info)
        if line == self._last:
            return
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
        else:
            stage = (info or {}).get("stage") if isinstance(info, dict) else None
            key = (status, stage, int(percent) // 25)
            if key == self._last_key:
                return
            self._last_key = key
            self.stream.write(line + "\n")
        self.stream.flush()
        self._last = line

    def note(self, text: str) -> None:
        """A message on its own line, the bar redrawn under it."""
        if self.tty and self._last:
            self.stream.write("\r\x1b[2K")
        self.stream.write(text + "\n")
        if self.tty and self._last:
            self.stream.write(self._last)
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._last:
            self.stream.write("\n")
            self.stream.flush()
        self._last = ""


def live_workers(conn, job_type: str) -> int:
    """How many running workers with a recent heartbeat serve `job_type`."""
    return conn.execute(q("api_workers_serving"), {"job_type": job_type, "live_s": LIVE_WORKER_S}).fetchone()[
        "n"
    ]


def follow(queue, job_id, timeout_s: float | None = None, display: Display | None = None):
    """Show a job's progress until it finishes; the finished job, or None when `timeout_s` passed first.
    Says "waiting for a worker" once, only when no live worker serves the job's type (a busy one will
    come to it)."""
    display = display or Display()
    started = time.monotonic()
    hinted = False
    try:
        while True:
            job = queue.get(job_id)
            if job.status in FINISHED:
                display.show(
                    "processing",
                    100 if job.status == "completed" else job.progress_percent,
                    {"stage": str(job.status)},
                )
                return job
            waited = time.monotonic() - started
            if job.status == "pending" and waited > NO_WORKER_HINT_AFTER_S and not hinted:
                if not live_workers(queue.conn, job.job_type):
                    display.note(
                        "waiting for a worker: none is running for this job type; start one with "
                        "`enchant-worker worker` (or `worker --burst`)"
                    )
                hinted = True
            display.show(job.status, job.progress_percent, job.progress)
            if timeout_s is not None and waited > timeout_s:
                return None
            time.sleep(POLL_INTERVAL_S)
    finally:
        display.close()
