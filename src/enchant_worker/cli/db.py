"""`migrate` and `db start|stop|status|url`."""

from __future__ import annotations

from enchant_worker.cli.common import print_json
from enchant_worker.config import get_settings
from enchant_worker.db import embedded
from enchant_worker.db.connection import database_url
from enchant_worker.db.setup import connect_database, migrate_database


def register(commands) -> None:
    p = commands.add_parser(
        "migrate",
        help="apply pending schema migrations",
        description="Apply the SQL files of the migrations folder that are not applied yet.",
    )
    p.set_defaults(func=cmd_migrate)

    p = commands.add_parser(
        "db",
        help="the embedded Postgres (used when ENCHANT_DATABASE_URL is unset)",
        description="Manage the private Postgres kept under ENCHANT_HOME/pgdata.",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("start", help="start it (initialising it the first time)").set_defaults(func=cmd_start)
    actions.add_parser("stop", help="stop it").set_defaults(func=cmd_stop)
    actions.add_parser("status", help="is it initialised and running").set_defaults(func=cmd_status)
    actions.add_parser("url", help="print the database URL every command uses").set_defaults(func=cmd_url)


def cmd_migrate(args) -> int:
    settings = get_settings()
    applied = migrate_database(connect_database(settings), settings)
    print(f"applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def cmd_start(args) -> int:
    print(embedded.start(get_settings().pgdata))
    return 0


def cmd_stop(args) -> int:
    stopped = embedded.stop(get_settings().pgdata)
    print("stopped" if stopped else "not running")
    return 0


def cmd_status(args) -> int:
    print_json(embedded.status(get_settings().pgdata))
    return 0


def cmd_url(args) -> int:
    print(database_url(get_settings()))
    return 0
