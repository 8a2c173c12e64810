"""`enqueue`, `jobs`, `job`, `cancel`, `retry`: the queue from the command line."""

from __future__ import annotations

from enchant_worker.cli.common import (
    check_idempotency_key,
    open_database,
    parse_metadata,
    positive_int,
    print_json,
    uuid_arg,
)
from enchant_worker.domain.jobs import JobStatus
from enchant_worker.handlers import default_registry
from enchant_worker.jobspecs import job_types
from enchant_worker.queue import JobQueue


def register(commands) -> None:
    p = commands.add_parser(
        "enqueue", help="add a job; prints its id", description="Add a job to the queue and print its id."
    )
    p.add_argument("job_type", metavar="TYPE", help="job type, e.g. noop or generate_image")
    p.add_argument("--metadata", default="{}", help="the job's input as a JSON object (default {})")
    p.add_argument("--priority", type=int, help="0 is most urgent (default: the job type's, 5 for most)")
    p.add_argument("--max-attempts", type=int, help="tries before the job fails (default: the job type's, 3)")
    p.add_argument(
        "--user",
        type=uuid_arg,
        metavar="USER_ID",
        help="enqueue for this user: checked with their rights, role and tier, as the API would",
    )
    p.add_argument("--entity-type", help="what the job is about, e.g. scene")
    p.add_argument("--entity-id", type=uuid_arg, help="the id of that entity")
    p.add_argument(
        "--idempotency-key", help="enqueueing the same key twice gives the same job (at most 200 characters)"
    )
    p.set_defaults(func=cmd_enqueue)

    p = commands.add_parser("jobs", help="list recent jobs", description="List recent jobs, newest first.")
    p.add_argument("--status", choices=[s.value for s in JobStatus])
    p.add_argument("--type", dest="job_type")
    p.add_argument("--limit", type=positive_int, default=50, help="how many (default 50)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_jobs)

    for name, func, text in (
        ("job", cmd_job, "show one job"),
        ("cancel", cmd_cancel, "cancel a pending job, or ask a running one to stop"),
        ("retry", cmd_retry, "run a failed or cancelled job again"),
    ):
        p = commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        p.add_argument("job_id", metavar="ID")
        p.set_defaults(func=func)


def _queue() -> JobQueue:
    _, db = open_database()
    return JobQueue(db.open())


def cmd_enqueue(args) -> int:
    from enchant_worker.intake import SYSTEM_ACTOR, Actor, JobRequest, submit
    from enchant_worker.intake.submit import actor_for_user

    metadata = parse_metadata(args.metadata)
    check_idempotency_key(args.idempotency_key)
    registry = default_registry()
    plugins = {t: registry[t].validate for t in registry.job_types if t not in job_types()}
    settings, db = open_database()
    request = JobRequest(
        args.job_type,
        metadata,
        priority=args.priority,
        max_attempts=args.max_attempts,
        entity_type=args.entity_type,
        entity_id=args.entity_id,
        idempotency_key=args.idempotency_key,
    )
    with db.connection() as conn:
        actor: Actor = actor_for_user(conn, args.user) if args.user else SYSTEM_ACTOR
        print(submit(conn, actor, request, settings, plugins))
    return 0


def cmd_jobs(args) -> int:
    jobs = _queue().list(status=args.status, job_type=args.job_type, limit=args.limit)
    if args.json:
        print_json(jobs)
        return 0
    print(f"{'id':36}  {'type':16} {'status':10} {'pri':>3} {'try':>5} {'prog':>4}  created")
    for j in jobs:
        print(
            f"{j.id}  {j.job_type[:16]:16} {j.status:10} {j.priority:>3} {j.attempts:>2}/{j.max_attempts:<2} "
            f"{j.progress_percent:>3}%  {j.created_at:%Y-%m-%d %H:%M:%S}"
            + (f"  {j.error_message[:60]}" if j.error_message else "")
        )
    return 0


def cmd_job(args) -> int:
    print_json(_queue().get(args.job_id))
    return 0


def cmd_cancel(args) -> int:
    status = _queue().cancel(args.job_id)
    print(
        "cancelled" if status == "cancelled" else "cancel requested; the running job stops at its next step"
    )
    return 0


def cmd_retry(args) -> int:
    _queue().retry(args.job_id)
    print("queued again")
    return 0
