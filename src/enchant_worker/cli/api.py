"""`api` (the control plane over HTTP) and `keys create|list|revoke` (its API keys)."""

from __future__ import annotations

import sys

from enchant_worker import logs
from enchant_worker.cli.common import open_database, print_json, uuid_arg
from enchant_worker.errors import ConfigurationError
from enchant_worker.storage import storage_for


def register(commands) -> None:
    p = commands.add_parser(
        "api",
        help="serve the control API and dashboard",
        description="Serve the versioned control API (/v1, /v2), /metrics and /dashboard "
        "with uvicorn. Create a key first with `enchant-worker keys create`.",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--handlers",
        metavar="MODULE",
        help="also accept the job types of the Handlers in MODULE's HANDLERS list",
    )
    p.set_defaults(func=cmd_api)

    keys = commands.add_parser(
        "keys",
        help="create, list and revoke API keys",
        description="API keys: stored only as hashes; a key is shown once, at creation.",
    )
    sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    p = sub.add_parser("create", help="create a key and print it (shown only this once)")
    p.add_argument("--name", required=True, help="what the key is for, e.g. 'web app' or 'alice laptop'")
    p.add_argument(
        "--role",
        choices=["admin", "user"],
        default="user",
        help="admin: everything; user: one user's jobs, LoRAs, presets and shared stories",
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--user-id", type=uuid_arg, help="the user a user key acts for (must exist)")
    who.add_argument("--email", help="the user a user key acts for, by email (created when missing)")
    p.set_defaults(func=cmd_keys_create)
    p = sub.add_parser("list", help="list keys (never the keys themselves)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_keys_list)
    p = sub.add_parser("revoke", help="revoke a key by id or by the prefix shown in the list")
    p.add_argument("ref", metavar="ID_OR_PREFIX")
    p.set_defaults(func=cmd_keys_revoke)

    users = commands.add_parser(
        "users",
        help="users' subscription tiers and quotas",
        description="Tiers (free, pro, enterprise) and per-user quota exceptions; "
        "the tiers' limits are in configs/tiers.toml.",
    )
    sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="users with their tier, exceptions and today's usage")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_users_list)
    p = sub.add_parser("set-tier", help="change a user's tier and/or quota exceptions")
    p.add_argument("user_id", metavar="USER_ID", type=uuid_arg)
    p.add_argument("tier", metavar="TIER", nargs="?", choices=["free", "pro", "enterprise"])
    p.add_argument(
        "--quota",
        action="append",
        default=None,
        metavar="KEY=N",
        help="an exception to the tier, e.g. images_per_day=500 (repeat; KEY= alone removes one)",
    )
    p.set_defaults(func=cmd_users_set_tier)


def cmd_api(args) -> int:
    from enchant_worker.api import create_app
    from enchant_worker.handlers import default_registry

    settings, db = open_database()
    storage_for(settings)  # a bad ENCHANT_STORAGE_URL or missing S3 credentials stop start-up, not a request
    app = create_app(
        settings,
        database_url=db.url,
        session_url=db.session_url,
        job_types=default_registry(module=args.handlers),
    )
    api_server(app, args).run()
    return 0


def api_server(app, args, *, finish_own_shutdown: bool = False):
    """uvicorn serving `app` on --host and --port. Its records go through the project's log handler (text
    or JSON); the client address comes from ENCHANT_TRUSTED_PROXIES only (uvicorn's proxy headers off);
    a stop signal ends the open dashboard event streams at once instead of holding the shutdown up.
    uvicorn re-raises the stop signal once it has shut down, which would kill the process before a worker
    beside it hands back its job; with finish_own_shutdown (serve) it does not, and the caller finishes."""
    import uvicorn

    from enchant_worker.api.routes.dashboard import stop_streams

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            stop_streams()
            super().handle_exit(sig, frame)
            if finish_own_shutdown:
                self._captured_signals.clear()

    return Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            log_level=args.log_level.lower(),
            log_config=None,
            access_log=logs.access_log_enabled(),
            proxy_headers=False,
        )
    )


def _store():
    from enchant_worker.api.store import Store

    _, db = open_database()
    return Store(db.open())


def cmd_keys_create(args) -> int:
    from enchant_worker.api.auth import create_key

    store = _store()
    user_id = args.user_id
    if args.role == "user" and user_id is None and not args.email:
        raise ConfigurationError("a user key acts for one user: give --user-id or --email")
    if args.email:
        user_id = store.ensure_user(args.email)
    elif user_id is not None and not store.user_exists(user_id):
        raise ConfigurationError(f"no user with id {user_id}; use --email to create one")
    key, row = create_key(store, name=args.name, role=args.role, user_id=user_id)
    print(key)
    print(
        f"created {row['role']} key {row['prefix']}… ({row['name']}, id {row['id']}"
        + (f", user {user_id}" if user_id else "")
        + "). It is shown only this once: store it now.",
        file=sys.stderr,
    )
    return 0


def cmd_keys_list(args) -> int:
    rows = _store().list_keys()
    if args.json:
        print_json(rows)
        return 0
    print(f"{'prefix':12} {'role':6} {'state':8} {'last used':19}  {'user':36}  name")
    for r in rows:
        state = "revoked" if r["revoked_at"] else "active"
        used = f"{r['last_used_at']:%Y-%m-%d %H:%M:%S}" if r["last_used_at"] else "never"
        print(
            f"{r['prefix']:12} {r['role']:6} {state:8} {used:19}  {str(r['user_id'] or '-'):36}  {r['name']}"
        )
    return 0


def cmd_keys_revoke(args) -> int:
    row = _store().revoke_key(args.ref)
    if row is None:
        raise ConfigurationError(
            f"no active key with id or prefix {args.ref!r}; see `enchant-worker keys list`"
        )
    print(f"revoked {row['role']} key {row['prefix']}… ({row['name']})")
    return 0


def cmd_users_list(args) -> int:
    rows = _store().user_tiers(user_id=None, limit=10_000)
    if args.json:
        print_json(rows)
        return 0
    print(f"{'user':36}  {'tier':10} {'active':>6}  {'today':24} exceptions  email")
    for r in rows:
        usage = ", ".join(f"{k} {v}" for k, v in sorted(r["usage_today"].items())) or "-"
        exceptions = ", ".join(f"{k}={v}" for k, v in sorted(r["quota_overrides"].items())) or "-"
        print(
            f"{r['id']}  {r['subscription_tier']:10} {r['active_jobs']:>6}  {usage:24} {exceptions}  {r['email'] or ''}"
        )
    return 0


def cmd_users_set_tier(args) -> int:
    from enchant_worker.intake.tiers import check_overrides

    store = _store()
    rows = store.user_tiers(user_id=args.user_id, limit=1)
    if not rows:
        raise ConfigurationError(f"no user with id {args.user_id}; see `enchant-worker users list`")
    overrides = None
    if args.quota is not None:
        overrides = dict(rows[0]["quota_overrides"])
        for item in args.quota:
            key, sep, value = item.partition("=")
            if not sep:
                raise ConfigurationError(f"--quota {item!r}: write KEY=N (or KEY= to remove the exception)")
            if value == "":
                overrides.pop(key.strip(), None)
                continue
            try:
                overrides[key.strip()] = int(value)
            except ValueError:
                raise ConfigurationError(f"--quota {item!r}: N must be a whole number") from None
        try:
            overrides = check_overrides(overrides)
        except ValueError as exc:
            raise ConfigurationError(f"--quota {exc}") from None
    if args.tier is None and overrides is None:
        raise ConfigurationError("give a TIER, --quota KEY=N, or both")
    row = store.set_user_tier(args.user_id, args.tier, overrides)
    print(
        f"user {row['id']}: tier {row['subscription_tier']}"
        + (f", exceptions {row['quota_overrides']}" if row["quota_overrides"] else "")
    )
    return 0
