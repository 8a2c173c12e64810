"""Many hosts, one Postgres, one object store: three network namespaces made by the test, on one bridge.

    host A  Postgres (relayed onto A's address) and the S3-compatible server (moto)
    host B  a worker
    host C  the API (and, in the second test, the worker that takes over)

Each host has its own ENCHANT_HOME, so nothing is shared but the database and the object storage. Skipped
with the reason where network namespaces cannot be made (not root, no iproute2)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue.jobqueue import JobQueue
from tests.support import netns
from tests.support.object_storage import BUCKET, make_bucket, moto_server_class, s3_env
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
S3_PORT, API_PORT = 9000, 8000  # the namespaces are new: every port is free there
PREFIX = "fleet"


class Cluster:
    def __init__(self, hosts: dict[str, netns.Host], env: dict[str, str], home: Path):
        self.hosts, self.env, self.home = hosts, env, home
        self.processes: list[tuple[subprocess.Popen, Path]] = []

    def start(self, host: str, *args: str, **env: str) -> subprocess.Popen:
        """`enchant-worker ARGS` on that host, with its own home folder; output to a log file."""
        log_path = self.home / f"{host}-{len(self.processes)}.log"
        environment = {**self.env, "ENCHANT_HOME": str(self.home / host), **env}
        with open(log_path, "wb") as log:
            process = self.hosts[host].run(
                [sys.executable, "-m", "enchant_worker.cli", *args], environment, log
            )
        self.processes.append((process, log_path))
        return process

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}" for _, path in self.processes
        )

    def stop(self) -> None:
        for process, _ in self.processes:
            if process.poll() is None:
                process.terminate()
        for process, _ in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def reachable(address: str, port: int) -> bool:
    try:
        socket.create_connection((address, port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture
def cluster(server_url, db_url, tmp_path) -> Cluster:
    if reason := netns.unavailable():
        pytest.skip(reason)
    moto_server_class()  # skips, naming moto[server], when it is missing
    with netns.fleet(["a", "b", "c"]) as (hosts, _), netns.postgres_on(hosts["a"], server_url) as pg_port:
        a = hosts["a"]
        s3_log = tmp_path / "a-s3.log"
        with open(s3_log, "wb") as log:
            s3 = a.run(
                [sys.executable, "-m", "moto.server", "-H", a.address, "-p", str(S3_PORT)],
                dict(os.environ),
                log,
            )
        try:
            endpoint = f"http://{a.address}:{S3_PORT}"
            wait_for(lambda: reachable(a.address, S3_PORT), timeout=60, what="the S3 server on host A")
            make_bucket(endpoint)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("ENCHANT_", "AWS_"))}
            env.update(
                s3_env(endpoint),
                HF_HUB_OFFLINE="1",
                ENCHANT_DEVICE="cpu",
                ENCHANT_DATABASE_URL=psycopg.conninfo.make_conninfo(db_url, host=a.address, port=pg_port),
                ENCHANT_STORAGE_URL=f"s3://{BUCKET}/{PREFIX}",
                ENCHANT_LEASE_SECONDS="3",
                ENCHANT_HEARTBEAT_SECONDS="0.5",
                ENCHANT_REAP_INTERVAL_S="0.5",
                ENCHANT_POLL_INTERVAL_S="0.5",
                ENCHANT_RETRY_BASE_S="0.2",
                ENCHANT_RETRY_MAX_S="2",
                ENCHANT_DB_RETRY_MAX_S="120",
                ENCHANT_SHUTDOWN_GRACE_S="1",
            )
            running = Cluster(hosts, env, tmp_path)
            try:
                yield running
            finally:
                running.stop()
                print(running.logs())  # shown by pytest when the test failed
        finally:
            s3.terminate()
            s3.wait(timeout=15)


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("models")
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "enchant_worker.cli",
            "models",
            "build-tiny",
            "--path",
            str(folder / "tiny-sd"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert built.returncode == 0, built.stderr
    return folder


def job(conn, job_id):
    return conn.execute(
        "SELECT status, attempts, result, completed_at, leased_by FROM processing_jobs WHERE id = %s",
        (job_id,),
    ).fetchone()


def test_an_image_generated_on_host_b_is_served_by_the_api_on_host_c(cluster, conn, tiny_models):
    c = cluster.hosts["c"]
    cluster.start("b", "worker", "--types", "generate_image", ENCHANT_MODELS_DIR=str(tiny_models))
    cluster.start("c", "api", "--host", c.address, "--port", str(API_PORT))
    job_id = JobQueue(conn).enqueue(
        NewJob("generate_image", {"prompt": "a lamp at the point", "steps": 2, "seed": 7})
    )
    done = wait_for(
        lambda: (r := job(conn, job_id))["status"] in ("completed", "failed") and r,
        timeout=400,
        what="the image on host B",
        every=0.5,
    )
    assert done["status"] == "completed", cluster.logs()
    key = done["result"]["images"][0]["path"]
    image_id = conn.execute("SELECT id FROM images WHERE file_path = %s", (key,)).fetchone()["id"]
    stored = make_bucket_client(cluster).get_object(Bucket=BUCKET, Key=f"{PREFIX}/{key}")["Body"].read()
    assert stored.startswith(b"\x89PNG")
    assert not list((cluster.home / "b").rglob("*.png"))  # B kept no copy: the image lives on host A only

    admin_key, _ = create_key(Store(conn), name="fleet admin", role="admin", user_id=None)
    wait_for(lambda: reachable(c.address, API_PORT), timeout=60, what="the API on host C")
    r = httpx.get(
        f"http://{c.address}:{API_PORT}/v1/images/{image_id}/file",
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert r.content == stored and r.headers["etag"] == f'"{done["result"]["images"][0]["hash"]}"'
    assert not list((cluster.home / "c").rglob("*.png"))  # C streamed it from host A


def make_bucket_client(cluster: Cluster):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=cluster.env["AWS_ENDPOINT_URL"],
        region_name="us-east-1",
        aws_access_key_id=cluster.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=cluster.env["AWS_SECRET_ACCESS_KEY"],
    )


def test_a_host_that_loses_its_link_mid_job_loses_the_job_and_it_finishes_elsewhere_once(cluster, conn):
    b = cluster.hosts["b"]
    on_b = cluster.start("b", "worker", "--types", "noop")
    job_id = JobQueue(conn).enqueue(NewJob("noop", {"seconds": 6}, max_attempts=5))
    b_worker = wait_for(
        lambda: conn.execute("SELECT id FROM workers WHERE pid = %s", (on_b.pid,)).fetchone(),
        timeout=120,
        what="host B's worker",
        every=0.2,
    )["id"]
    wait_for(
        lambda: (r := job(conn, job_id))["status"] == "processing" and r["leased_by"] == b_worker,
        timeout=60,
        what="host B to start the job",
        every=0.1,
    )
    b.link_down()
    on_c = cluster.start("c", "worker", "--types", "noop")
    done = wait_for(
        lambda: (r := job(conn, job_id))["status"] == "completed" and r,
        timeout=120,
        what="the job to finish on host C",
        every=0.2,
    )
    c_worker = conn.execute("SELECT id FROM workers WHERE pid = %s", (on_c.pid,)).fetchone()["id"]
    assert done["attempts"] == 2  # B's run, then C's
    assert done["result"] == {"slept_s": 6.0}

    back_at = time.time()
    b.link_up()
    # B's worker reaches the database again; its late completion is refused (the lease token changed)
    wait_for(
        lambda: conn.execute(
            "SELECT heartbeat_at > to_timestamp(%s) AND current_job_ids = '{}' AS back "
            "FROM workers WHERE id = %s",
            (back_at + 1, b_worker),
        ).fetchone()["back"],
        timeout=120,
        what="host B's worker to come back",
        every=0.5,
    )
    counts = {
        r["id"]: r["jobs_completed"]
        for r in conn.execute(
            "SELECT id, jobs_completed FROM workers WHERE id = ANY(%s)", ([b_worker, c_worker],)
        )
    }
    assert counts == {b_worker: 0, c_worker: 1}
    after = job(conn, job_id)
    assert after["status"] == "completed" and after["completed_at"] == done["completed_at"]
    assert after["attempts"] == 2
