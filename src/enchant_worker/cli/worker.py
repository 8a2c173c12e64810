"""`worker`: lease and run jobs until stopped."""

from __future__ import annotations

import logging
import signal

from enchant_worker.cli.common import freeze_start_up, job_types_arg, open_database
from enchant_worker.handlers import default_registry
from enchant_worker.providers.config import check_providers
from enchant_worker.storage import storage_for
from enchant_worker.worker.runner import Worker

log = logging.getLogger(__name__)


def register(commands) -> None:
    p = commands.add_parser(
        "worker",
        help="run jobs",
        description="Lease jobs from the queue and run them. SIGTERM or Ctrl-C stops leasing and lets running "
        "jobs finish within ENCHANT_SHUTDOWN_GRACE_S, then hands them back without spending an attempt; a "
        "second signal hands them back at once.",
    )
    p.add_argument("--types", help="comma-separated job types to serve (default: every registered type)")
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at once (default 1; 1 per GPU)")
    p.add_argument("--burst", action="store_true", help="exit once nothing is runnable")
    p.add_argument(
        "--handlers", metavar="MODULE", help="import MODULE and register the Handlers in its HANDLERS list"
    )
    p.set_defaults(func=cmd_worker)


def cmd_worker(args) -> int:
    settings, db = open_database(wait=True)
    check_providers(settings)  # a missing provider secret stops the worker now, not at the first job
    storage_for(settings)  # so do a bad ENCHANT_STORAGE_URL and missing S3 credentials
    registry = default_registry(module=args.handlers)
    types = job_types_arg(args.types)
    worker = Worker(db, settings, registry, job_types=types, concurrency=args.concurrency, burst=args.burst)
    signals = {"count": 0}

    def on_signal(signum, frame):
        signals["count"] += 1
        log.info(
            "received %s; %s",
            signal.Signals(signum).name,
            "stopping now" if signals["count"] > 1 else "finishing running jobs (signal again to stop now)",
        )
        worker.stop(now=signals["count"] > 1)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    freeze_start_up()
    worker.run()
    return 0
