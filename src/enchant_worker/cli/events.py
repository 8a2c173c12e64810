"""`events rollup [--from DAY] [--to DAY]`, `events expire [--retention-days N]`, `events stats`: the
analytics events outside the scheduler (a backfill of story_metrics, a one-off purge, a look)."""

from __future__ import annotations

import sys
from datetime import UTC, date, datetime, timedelta

from enchant_worker.cli.common import open_database, print_json


def register(commands) -> None:
    p = commands.add_parser(
        "events",
        help="analytics events: roll up into story_metrics, expire, count",
        description="Analytics events (POST /v1/events). The scheduler runs the roll-up and "
        "the expiry on their own (tasks rollup_events and expire_events of configs/schedule.toml); "
        "these run them now, e.g. to backfill older days.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = actions.add_parser(
        "rollup", help="(re)compute the daily story_metrics of some days from the raw events"
    )
    a.add_argument(
        "--from",
        dest="first",
        type=date.fromisoformat,
        metavar="DAY",
        help="first UTC day, YYYY-MM-DD (default: ENCHANT_METRICS_DAYS_BACK days before --to)",
    )
    a.add_argument(
        "--to", dest="last", type=date.fromisoformat, metavar="DAY", help="last UTC day (default: today)"
    )
    a.set_defaults(func=cmd_rollup)
    a = actions.add_parser("expire", help="delete raw events older than the retention period now")
    a.add_argument(
        "--retention-days",
        type=float,
        metavar="N",
        help="default: retention_days of [tasks.expire_events] in configs/schedule.toml (90)",
    )
    a.set_defaults(func=cmd_expire)
    a = actions.add_parser("stats", help="raw events per UTC day and type")
    a.add_argument("--type", dest="event_type", metavar="TYPE", help="only this event type")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=cmd_stats)


def cmd_rollup(args) -> int:
    from enchant_worker.analytics.rollup import rollup_events

    settings, db = open_database()
    last = args.last or datetime.now(UTC).date()
    first = args.first or last - timedelta(days=settings.metrics_days_back)
    if first > last:
        print(f"error: --from {first} is after --to {last}", file=sys.stderr)
        return 2
    with db.connection() as conn:
        print_json(rollup_events(conn, first, last))
    return 0


def cmd_expire(args) -> int:
    from enchant_worker.analytics import rollup
    from enchant_worker.scheduling.tasks import schedule_options

    settings, db = open_database()
    retention = args.retention_days
    if retention is None:
        retention = schedule_options(settings, "expire_events").get(
            "retention_days", rollup.DEFAULT_RETENTION_DAYS
        )
    if not retention > 0:
        print("error: --retention-days must be a positive number of days", file=sys.stderr)
        return 2
    before = rollup.expiry_cutoff(datetime.now(UTC), retention, settings.metrics_days_back)
    with db.connection() as conn:
        deleted = rollup.expire_events(conn, before)
    print_json({"retention_days": retention, "before": before.isoformat(), "deleted": deleted})
    return 0


def cmd_stats(args) -> int:
    from enchant_worker.sql import q

    _, db = open_database()
    with db.connection() as conn:
        rows = conn.execute(
            q("event_aggregates"),
            {"event_type": args.event_type, "from_ts": None, "to_ts": None, "limit": 10_000},
        ).fetchall()
    if args.json:
        print_json([{**r, "day": r["day"].isoformat()} for r in rows])
        return 0
    for r in rows:
        print(
            f"{r['day']}  {r['event_type']:24} {r['events']:>8} events {r['users']:>6} users {r['sessions']:>6} sessions"
        )
    if not rows:
        print("no raw events")
    return 0
