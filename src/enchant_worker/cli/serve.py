"""`serve`: the single-box mode — API, worker and scheduler in one process."""

from __future__ import annotations

import logging
import signal
import threading

from enchant_worker.cli.api import api_server
from enchant_worker.cli.common import freeze_start_up, job_types_arg, open_database
from enchant_worker.handlers import default_registry
from enchant_worker.storage import storage_for
from enchant_worker.worker.runner import Worker

log = logging.getLogger(__name__)


def register(commands) -> None:
    p = commands.add_parser(
        "serve",
        help="API + worker + scheduler in one process (one box)",
        description="Run the control API, a worker and the maintenance scheduler in one process: the "
        "single-box mode. Ctrl-C or SIGTERM stops the API, lets the running job finish within "
        "ENCHANT_SHUTDOWN_GRACE_S (else hands it back), then stops the scheduler.",
    )
    p.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    p.add_argument("--types", help="comma-separated job types the worker serves (default: all)")
    p.add_argument("--concurrency", type=int, default=1, help="jobs run at once (default 1)")
    p.add_argument(
        "--handlers", metavar="MODULE", help="also register the Handlers in MODULE's HANDLERS list"
    )
    p.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from enchant_worker.api import create_app
    from enchant_worker.scheduling import start_scheduler

    settings, db = open_database(wait=True)
    from enchant_worker.providers.config import check_providers

    check_providers(settings)  # a missing provider secret stops the worker now, not at the first job
    storage_for(settings)  # so do a bad ENCHANT_STORAGE_URL and missing S3 credentials
    registry = default_registry(module=args.handlers)
    types = job_types_arg(args.types)
    worker = Worker(db, settings, registry, job_types=types, concurrency=args.concurrency)
    worker_thread = threading.Thread(target=worker.run, name="worker", daemon=True)
    scheduler = start_scheduler(db, settings)
    freeze_start_up()
    worker_thread.start()
    try:
        app = create_app(settings, database_url=db.url, session_url=db.session_url, job_types=registry)
        api_server(app, args, finish_own_shutdown=True).run()  # owns SIGINT/SIGTERM; returns once stopped
    finally:
        log.info("stopping the worker and the scheduler (signal again to hand back running jobs now)")
        for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn has restored the default handlers
            signal.signal(sig, lambda signum, frame: worker.stop(now=True))
        worker.stop()
        worker_thread.join(timeout=settings.shutdown_grace_s + 15)
        scheduler.stop()
    return 0
