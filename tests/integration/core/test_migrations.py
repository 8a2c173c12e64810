import shutil
import threading

import pytest

from enchant_worker.db.connection import connect
from enchant_worker.db.migrate import applied, migrate
from enchant_worker.errors import MigrationError
from tests.conftest import REPO


def test_fresh_apply_then_reapply_is_a_noop(empty_db_url):
    with connect(empty_db_url) as conn:
        first = migrate(conn, REPO / "migrations")
        assert first and first == sorted(first)
        assert migrate(conn, REPO / "migrations") == []
        assert set(applied(conn)) == set(first)
        # the specification's index, exactly
        indexdef = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_processing_jobs_queue'"
        ).fetchone()["indexdef"]
        assert "(status, priority, created_at)" in indexdef
        assert "status = ANY (ARRAY['pending'::text, 'processing'::text])" in indexdef


def test_changed_file_is_refused_by_name(empty_db_url, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", folder)
    with connect(empty_db_url) as conn:
        migrate(conn, folder)
        target = sorted(folder.glob("*.sql"))[0]
        target.write_text(target.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match=f"{target.name} was changed after it was applied"):
            migrate(conn, folder)


def test_failed_migration_names_the_file_and_leaves_earlier_ones(empty_db_url, tmp_path):
    folder = tmp_path / "migrations"
    shutil.copytree(REPO / "migrations", folder)
    (folder / "9999_broken.sql").write_text("CREATE TABLE broken (;")
    with connect(empty_db_url) as conn:
        with pytest.raises(MigrationError, match="9999_broken.sql failed"):
            migrate(conn, folder)
        assert "9999_broken" not in applied(conn) and "0001_core" in applied(conn)


def test_two_concurrent_migrators(empty_db_url):
    results, errors = [], []

    def run():
        try:
            with connect(empty_db_url) as conn:
                results.append(migrate(conn, REPO / "migrations"))
        except Exception as exc:  # pragma: no cover - the assertion below reports it
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(len(r) for r in results)[0] == 0  # the second found nothing left to do
    assert sum(len(r) for r in results) == len(list((REPO / "migrations").glob("*.sql")))
