"""`scheduler`, `maintenance list|run TASK`, `data-migrations list|run NAME|status`."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

from enchant_worker.cli.common import open_database, print_json
from enchant_worker.config import Settings, get_settings

log = logging.getLogger(__name__)


def register(commands) -> None:
    p = commands.add_parser(
        "scheduler",
        help="run maintenance and recurring jobs (one leader at a time)",
        description="Run the scheduler: of all the schedulers sharing the database, one leads (a Postgres "
        "advisory lock) and runs the maintenance tasks and recurring jobs of configs/schedule.toml "
        "(ENCHANT_SCHEDULE_FILE); the others wait to take over. SIGTERM or Ctrl-C hands leadership over.",
    )
    p.add_argument(
        "--schedule", type=Path, metavar="FILE", help="the schedule file (default: configs/schedule.toml)"
    )
    p.set_defaults(func=cmd_scheduler)

    p = commands.add_parser(
        "maintenance",
        help="list or run maintenance tasks",
        description="The scheduler's maintenance tasks: list them, or run one now.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser("list", help="the tasks, their schedule, their last run and the leader")
    a.add_argument(
        "--schedule", type=Path, metavar="FILE", help="the schedule file (default: configs/schedule.toml)"
    )
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_maintenance_list)
    a = actions.add_parser("run", help="run one task now (safe while the scheduler runs)")
    a.add_argument("task", metavar="TASK")
    a.set_defaults(func=cmd_maintenance_run)

    p = commands.add_parser(
        "data-migrations",
        help="named Python data migrations",
        description="Data migrations run as data_migration jobs in resumable batches.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the registered data migrations").set_defaults(func=cmd_dm_list)
    a = actions.add_parser("run", help="queue a data_migration job (or continue a failed one)")
    a.add_argument("name", metavar="NAME")
    a.add_argument("--inline", action="store_true", help="run it in this process instead of queueing a job")
    a.set_defaults(func=cmd_dm_run)
    a = actions.add_parser("status", help="progress and status of every data migration")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_dm_status)


def _with_schedule(settings: Settings, args) -> Settings:
    """The settings, with --schedule FILE in place of ENCHANT_SCHEDULE_FILE when given."""
    if getattr(args, "schedule", None):
        return settings.model_copy(update={"schedule_file": args.schedule})
    return settings


# -- scheduler ----------------------------------------------------------------------------------


def cmd_scheduler(args) -> int:
    from enchant_worker.scheduling.service import SchedulerService, load_config

    settings = _with_schedule(get_settings(), args)
    config = load_config(settings)  # refuse a bad schedule before touching the database
    _, db = open_database(wait=True)
    service = SchedulerService(db, settings, config=config)
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("received %s; stopping the scheduler", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    service.run_forever(stop)
    return 0


# -- maintenance --------------------------------------------------------------------------------


def cmd_maintenance_list(args) -> int:
    from enchant_worker.scheduling import tasks
    from enchant_worker.scheduling.leader import current_leader
    from enchant_worker.scheduling.service import load_config

    config = load_config(_with_schedule(get_settings(), args))
    _, db = open_database()
    runs = tasks.last_runs(db)
    with db.connection() as conn:
        leader = current_leader(conn)
    rows: list[dict[str, Any]] = []
    for name, task in tasks.TASKS.items():
        timing = config.tasks.get(name)
        rows.append(
            {
                "task": name,
                "schedule": str(timing) if timing else "disabled",
                "description": task.description,
                "last_run": runs.get(name),
                **({"options": config.options[name]} if name in config.options else {}),
            }
        )
    for job in config.jobs:
        rows.append(
            {
                "task": f"job:{job.name}",
                "schedule": str(job.timing),
                "description": f"enqueue a {job.job_type} job",
                "last_run": runs.get(f"job:{job.name}"),
            }
        )
    if args.json:
        print_json({"leader": leader, "tasks": rows})
        return 0
    print(f"leader: {leader or '(none running)'}")
    for row in rows:
        last = row["last_run"]
        when = f"last {last['status']} {last['started_at']:%Y-%m-%d %H:%M:%S}" if last else "never run"
        options = "".join(f" [{k} = {v:g}]" for k, v in row.get("options", {}).items())
        print(f"{row['task']:24} {row['schedule']:24} {when:36} {row['description']}{options}")
    return 0


def cmd_maintenance_run(args) -> int:
    from enchant_worker.scheduling import tasks

    tasks.get_task(args.task)  # an unknown name is refused before connecting
    settings, db = open_database()
    print_json({"task": args.task, "result": tasks.run_now(args.task, db, settings)})
    return 0


# -- data migrations ----------------------------------------------------------------------------


def cmd_dm_list(args) -> int:
    from enchant_worker.data_migrations import default_data_migrations

    for m in default_data_migrations():
        print(f"{m.name:32} {m.from_version} -> {m.to_version}  {m.description}")
    return 0


def cmd_dm_run(args) -> int:
    from enchant_worker.data_migrations import (
        default_data_migrations,
        enqueue_data_migration,
        run_data_migration,
    )

    migration = default_data_migrations().get(args.name)
    settings, db = open_database()
    with db.connection() as conn:
        if args.inline:
            print_json(run_data_migration(conn, migration, batch_size=settings.data_migration_batch_size))
        else:
            job_id, what = enqueue_data_migration(conn, migration)
            print(f"{job_id} {what}")
    return 0


def cmd_dm_status(args) -> int:
    from enchant_worker.data_migrations import default_data_migrations
    from enchant_worker.data_migrations.runner import status

    settings, db = open_database()
    with db.connection() as conn:
        rows = {r["migration_name"]: r for r in status(conn)}
    names = sorted(set(default_data_migrations().names) | set(rows))
    if args.json:
        print_json([rows.get(n) or {"migration_name": n, "status": "never run"} for n in names])
        return 0
    for name in names:
        r = rows.get(name)
        if r is None:
            print(f"{name:32} never run")
            continue
        print(
            f"{name:32} {r['status']:9} {r['progress_percent'] or 0:>3}%  {r['rows_done']}/{r['rows_total'] or '?'}"
            + (f"  error: {r['error_message']}" if r["error_message"] else "")
        )
    return 0
