"""Test databases: a real Postgres (ENCHANT_DATABASE_URL, else the embedded one), a migrated template
database made once per run, and a fresh clone of it per test (CREATE DATABASE ... TEMPLATE)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from enchant_worker.config import Settings
from enchant_worker.db.connection import Database, connect
from enchant_worker.db.migrate import migrate

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# The tiers: tests/unit (no database, network or model; tests/unit/conftest.py refuses connections),
# the ML tier (tests/ml and the tests below: they build and run tiny models; `scripts/test.sh --quick`
# leaves them and the slow ones out), integration (a real Postgres) and acceptance (the CLI and servers).
ML_TESTS = (
    "ml/",
    "integration/generation/",
    "integration/training/",
    "gpu/",
    "acceptance/test_generate_cli.py",
    "acceptance/test_train_cli.py",
    "integration/text/test_llm_",
    "integration/text/test_analyze_story_llm",
)


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        where = Path(str(item.path)).resolve().relative_to(REPO / "tests").as_posix()
        if where.startswith(ML_TESTS):
            item.add_marker(pytest.mark.ml)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """scripts/test.sh runs the suite in two processes: each takes a test file at a time, and the ML tier
    goes to one process as a whole, so two never run torch at once (in a run where they did, on two cores,
    a worker thread of an affinity test missed renewing its 5 s lease, and the job went back)."""
    from xdist.scheduler import LoadScopeScheduling

    class FilesWithTheMLTierTogether(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "ml" if path.removeprefix("tests/").startswith(ML_TESTS) else path

    return FilesWithTheMLTierTogether(config, log)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Captured output as text that UTF-8 can carry: the tests' parallel processes send reports as UTF-8,
    and the poison-job tests log lone surrogates on purpose (they come out as \\udcXX escapes)."""
    outcome = yield
    report = outcome.get_result()
    report.sections = [
        (title, text.encode("utf-8", "backslashreplace").decode("utf-8")) for title, text in report.sections
    ]


def _with_dbname(url: str, dbname: str) -> str:
    return psycopg.conninfo.make_conninfo(url, dbname=dbname)


@pytest.fixture(scope="session")
def server_url(tmp_path_factory) -> str:
    """A URL of the test server (any database on it)."""
    url = os.environ.get("ENCHANT_DATABASE_URL")
    if url:
        return url
    from enchant_worker.db import embedded

    home = Path(os.environ.get("ENCHANT_TEST_HOME", REPO / ".enchant-test"))
    return embedded.start(home / "pgdata")


@pytest.fixture(scope="session")
def admin_url(server_url) -> str:
    return _with_dbname(server_url, "postgres")


@pytest.fixture(scope="session")
def template_db(admin_url) -> Iterator[str]:
    name = f"enchant_tpl_{os.getpid()}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    with connect(_with_dbname(admin_url, name)) as conn:
        migrate(conn, REPO / "migrations")
    yield name
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _fresh_database(admin_url: str, template: str | None) -> Iterator[str]:
    name = f"enchant_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _with_dbname(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(admin_url, template_db) -> Iterator[str]:
    """A migrated database of this test's own."""
    yield from _fresh_database(admin_url, template_db)


@pytest.fixture
def empty_db_url(admin_url) -> Iterator[str]:
    """An empty database (for migration tests)."""
    yield from _fresh_database(admin_url, None)


@pytest.fixture
def settings(db_url, tmp_path) -> Settings:
    return Settings(
        database_url=db_url,
        home=tmp_path / "home",
        lease_seconds=5,
        heartbeat_seconds=0.5,
        poll_interval_s=0.5,
        reap_interval_s=0.5,
        retry_base_s=0.2,
        retry_max_s=2,
        shutdown_grace_s=2,
    )


@pytest.fixture(scope="session")
def test_pooler(server_url) -> Iterator[object | None]:
    """With ENCHANT_TEST_POOLER=transaction (or session), the `db` and `conn` fixtures go through a PgBouncer
    of that mode started for the run (tests/integration/core/test_pgbouncer.py runs the queue tests so)."""
    mode = os.environ.get("ENCHANT_TEST_POOLER")
    if not mode:
        yield None
        return
    from enchant_worker.db.pgbouncer import PgBouncer

    with PgBouncer(server_url, mode=mode) as bouncer:
        yield bouncer


@pytest.fixture
def db(db_url, test_pooler) -> Database:
    if test_pooler is None:
        return Database(db_url)
    name = psycopg.conninfo.conninfo_to_dict(db_url)["dbname"]
    return Database(test_pooler.url(name), pooled=test_pooler.mode == "transaction", direct_url=db_url)


@pytest.fixture
def conn(db) -> Iterator[psycopg.Connection]:
    with db.connection() as c:
        yield c


@pytest.fixture
def cli_env(db_url, tmp_path) -> dict[str, str]:
    """Environment for running the CLI as a subprocess against this test's database."""
    env = dict(os.environ)
    env.update(
        ENCHANT_DATABASE_URL=db_url,
        ENCHANT_HOME=str(tmp_path / "home"),
        PYTHONPATH=os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]),
    )
    return env
