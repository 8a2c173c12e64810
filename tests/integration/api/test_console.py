"""The operations console (`/dashboard/…`): pages, actions with confirmation and CSRF, escaping, live
updates by server-sent events, and the progress history they show."""

from __future__ import annotations

import json
import re
import uuid

import pytest
from psycopg.types.json import Jsonb

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease


def _sign_in(client, caller) -> None:
    r = client.post("/dashboard", data={"key": caller.key}, follow_redirects=False)
    assert r.status_code == 303


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


@pytest.fixture
def console(client, admin):
    _sign_in(client, admin)
    return client


def test_every_page_renders_for_an_admin_and_asks_others_to_sign_in(console, conn):
    job = JobQueue(conn).enqueue(NewJob("noop"))
    lora = conn.execute(
        "INSERT INTO lora_models (name, model_file_url) VALUES ('ink', 'x') RETURNING id"
    ).fetchone()["id"]
    image = conn.execute(
        "INSERT INTO images (file_path, prompt) VALUES ('images/x.png', 'a fox') RETURNING id"
    ).fetchone()["id"]
    pages = [
        "/dashboard",
        "/dashboard?range=6h",
        "/dashboard?range=24h",
        "/dashboard/jobs",
        f"/dashboard/jobs/{job}",
        "/dashboard/workers",
        "/dashboard/loras",
        f"/dashboard/loras/{lora}",
        "/dashboard/scheduler",
        "/dashboard/images",
        f"/dashboard/images/{image}",
        "/dashboard/static/console.css",
        "/dashboard/static/console.js",
    ]
    for url in pages:
        r = console.get(url)
        assert r.status_code == 200, (url, r.text[:300])
        assert "http://" not in r.text and "https://" not in r.text  # nothing from elsewhere
    console.cookies.clear()
    for url in pages[:-2]:
        r = console.get(url)
        assert r.status_code == 401 and '<form method="post" action="/dashboard">' in r.text, url


def test_overview_chart_has_labelled_axes_and_the_no_worker_hint_only_without_a_live_worker(console, conn):
    queue = JobQueue(conn)
    queue.enqueue(NewJob("noop"))
    page = console.get("/dashboard").text
    assert "jobs per 1 min" in page and "time (UTC)" in page and 'id="total-pending">1<' in page
    assert "no live worker serves this type" in page
    queue.register_worker("w1", host="h", pid=1, job_types=["noop"], device={"kind": "cpu"}, concurrency=1)
    queue.worker_heartbeat("w1", [])
    assert "no live worker serves this type" not in console.get("/dashboard").text


def test_job_list_filters_and_search_by_id(console, conn):
    queue = JobQueue(conn)
    noop, other = queue.enqueue_many([NewJob("noop"), NewJob("generate_image", {"prompt": "x"})])
    page = console.get("/dashboard/jobs", params={"job_type": "noop"}).text
    assert str(noop) in page and str(other) not in page
    assert str(other) in console.get("/dashboard/jobs", params={"status": "pending"}).text
    r = console.get("/dashboard/jobs", params={"q": str(noop)[:8]}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/dashboard/jobs/{noop}"
    assert "no job has an id starting" in console.get("/dashboard/jobs", params={"q": "ffffffffffff"}).text
    for params in (
        {"q": "not-hex!"},
        {"status": "lost"},
        {"user_id": "bob"},
        {"created_from": "yesterday"},
        {"cursor": "forged.cursor"},
    ):
        r = console.get("/dashboard/jobs", params=params)
        assert r.status_code == 400, params


def test_cancel_with_confirmation_and_csrf_is_recorded(console, conn, admin):
    job = JobQueue(conn).enqueue(NewJob("noop"))
    confirm = console.get(f"/dashboard/jobs/{job}/confirm", params={"action": "cancel"})
    assert confirm.status_code == 200 and "Cancel job" in confirm.text
    token = _csrf(confirm.text)
    # Without the token, with a wrong one, or from another site: 403, nothing done.
    assert console.post(f"/dashboard/jobs/{job}/cancel", data={}).status_code == 403
    assert console.post(f"/dashboard/jobs/{job}/cancel", data={"csrf": "0" * 32}).status_code == 403
    r = console.post(
        f"/dashboard/jobs/{job}/cancel", data={"csrf": token}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    r = console.post(
        f"/dashboard/jobs/{job}/cancel", data={"csrf": token}, headers={"Origin": "https://evil.example"}
    )
    assert r.status_code == 403
    assert JobQueue(conn).get(job).status == "pending"
    r = console.post(f"/dashboard/jobs/{job}/cancel", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and JobQueue(conn).get(job).status == "cancelled"
    page = console.get(r.headers["location"]).text
    assert "cancel done by admin" in page and "pending → cancelled" in page
    # The wrong state: 409 naming it.
    r = console.post(f"/dashboard/jobs/{job}/cancel", data={"csrf": token})
    assert r.status_code == 409 and "cancelled" in r.text
    r = console.post(f"/dashboard/jobs/{job}/retry", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and JobQueue(conn).get(job).status == "pending"
    r = console.post(
        f"/dashboard/jobs/{job}/priority", data={"csrf": token, "priority": 0}, follow_redirects=False
    )
    assert r.status_code == 303 and JobQueue(conn).get(job).priority == 0
    assert (
        console.post(f"/dashboard/jobs/{job}/priority", data={"csrf": token, "priority": -1}).status_code
        == 422
    )


def test_a_user_keys_cookie_gets_no_console_and_no_action(client, conn, alice):
    job = JobQueue(conn).enqueue(NewJob("noop"))
    client.cookies.set("enchant_key", alice.key)
    assert client.get("/dashboard/jobs").status_code == 403
    r = client.post(f"/dashboard/jobs/{job}/cancel", data={"csrf": "x"})
    assert r.status_code == 403 and "user key" in r.text
    assert JobQueue(conn).get(job).status == "pending"


def test_bulk_retry_of_a_filtered_set(console, conn):
    queue = JobQueue(conn)
    ids = queue.enqueue_many([NewJob("noop") for _ in range(3)])
    for job in ids:
        queue.cancel(job)
    other = queue.enqueue(NewJob("generate_image", {"prompt": "x"}))
    queue.cancel(other)
    confirm = console.get("/dashboard/jobs/bulk", params={"action": "retry", "job_type": "noop"})
    assert confirm.status_code == 200 and "Retry 3 of the 3 jobs" in confirm.text
    r = console.post("/dashboard/jobs/bulk", data={"action": "retry", "job_type": "noop"})
    assert r.status_code == 403
    r = console.post(
        "/dashboard/jobs/bulk", data={"action": "retry", "job_type": "noop", "csrf": _csrf(confirm.text)}
    )
    assert r.status_code == 200 and "3 of 3 matching jobs changed" in r.text
    assert [queue.get(j).status for j in ids] == ["pending"] * 3 and queue.get(other).status == "cancelled"


def test_html_in_errors_prompts_and_metadata_is_escaped(console, conn):
    queue = JobQueue(conn)
    evil = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    job = queue.enqueue(NewJob("noop", {"note": evil}))
    [leased] = queue.lease("w1", ["noop"])
    queue.fail(Lease(leased.id, leased.lease_token), f"boom {evil}", attempt=1, retry=False)
    image = conn.execute(
        "INSERT INTO images (file_path, prompt, job_id) VALUES ('images/x.png', %s, %s) RETURNING id",
        [evil, job],
    ).fetchone()["id"]
    for url in (
        "/dashboard",
        f"/dashboard/jobs/{job}",
        "/dashboard/images",
        f"/dashboard/images/{image}",
        "/dashboard/jobs?status=failed",
    ):
        page = console.get(url).text
        assert "<script>alert" not in page and "<img src=x" not in page, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, url


def test_progress_history_and_loss_curve(console, conn):
    queue = JobQueue(conn)
    lora = conn.execute(
        "INSERT INTO lora_models (name, model_file_url) VALUES ('ink', 'x') RETURNING id"
    ).fetchone()["id"]
    job = queue.enqueue(
        NewJob("train_lora", {"base_model": "tiny-sd"}, entity_type="lora_model", entity_id=lora)
    )
    [leased] = queue.lease("w1", ["train_lora"])
    lease = Lease(leased.id, leased.lease_token)
    queue.extend([lease], {job: {"percent": 0, "info": {"stage": "preparing data"}}})
    for step in (1, 2, 3):
        queue.extend(
            [lease],
            {
                job: {
                    "percent": step * 10,
                    "info": {
                        "stage": "training",
                        "step": step,
                        "total": 10,
                        "loss": 1.0 / step,
                        "s_per_step": 0.5,
                        "eta_s": 4,
                    },
                }
            },
        )
    queue.extend(
        [lease],
        {
            job: {
                "percent": 30,
                "info": {
                    "stage": "training",
                    "step": 3,
                    "total": 10,
                    "loss": 1 / 3,
                    "s_per_step": 0.5,
                    "eta_s": 4,
                },
            }
        },
    )  # unchanged: no new row
    rows = conn.execute(
        "SELECT percent, progress FROM job_progress_history WHERE job_id = %s ORDER BY at", [job]
    ).fetchall()
    assert [r["progress"]["stage"] for r in rows] == ["preparing data", "training", "training", "training"]
    page = console.get(f"/dashboard/loras/{lora}").text
    assert 'id="loss-chart" data-points="3"' in page and "step 3/10" in page and "ETA 4.0s" in page
    assert 'data-points="3"' in console.get(f"/dashboard/jobs/{job}").text
    queue.complete(lease, {})
    conn.execute("DELETE FROM processing_jobs WHERE id = %s", [job])
    assert (
        conn.execute("SELECT count(*) AS n FROM job_progress_history WHERE job_id = %s", [job]).fetchone()[
            "n"
        ]
        == 0
    )


def _events(client, **params) -> list[dict]:
    """The `panels` events of one stream that ends after max_s."""
    with client.stream("GET", "/dashboard/events", params={"refresh": 1, "max_s": 1.5, **params}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    assert text.startswith("retry: 1000")  # the browser reconnects a second after the stream ends
    return [
        json.loads(block.split("data: ", 1)[1])
        for block in text.split("\n\n")
        if block.startswith("event: panels")
    ]


def test_events_stream_each_view_and_need_the_console_cookie(console, conn):
    job = JobQueue(conn).enqueue(NewJob("noop"))
    lora = conn.execute(
        "INSERT INTO lora_models (name, model_file_url) VALUES ('ink', 'x') RETURNING id"
    ).fetchone()["id"]
    first = _events(console)[0]
    assert 'id="total-pending">1<' in first["html"]
    assert str(job) in _events(console, view="job", id=str(job))[0]["html"]
    [training] = _events(console, view="lora", id=str(lora))  # nothing changed within the stream: one event
    assert "Loss curve" in training["html"]
    assert _events(console, view="workers") and _events(console, view="scheduler")
    assert console.get("/dashboard/events", params={"view": "job"}).status_code == 400
    console.cookies.clear()
    assert console.get("/dashboard/events").status_code == 401


def test_scheduler_page_shows_runs_and_failures(console, conn):
    conn.execute(
        "INSERT INTO maintenance_runs (task, tick, ran_by, status, error_message) VALUES "
        "('reap_leases', NOW(), 'sched-1', 'completed', NULL), "
        "('archive_jobs', NOW(), 'sched-1', 'failed', 'disk full')"
    )
    page = console.get("/dashboard/scheduler").text
    assert "reap_leases" in page and "disk full" in page and "no scheduler is leading" in page


def test_image_page_shows_parameters(console, conn):
    image = conn.execute(
        "INSERT INTO images (file_path, prompt, seed, parameters) VALUES ('images/x.png', 'a fox', 42, %s) "
        "RETURNING id",
        [Jsonb({"steps": 25, "cfg_scale": 7})],
    ).fetchone()["id"]
    page = console.get(f"/dashboard/images/{image}").text
    assert "a fox" in page and "42" in page and "cfg_scale" in page and f"/v1/images/{image}/file" in page
    assert console.get(f"/dashboard/images/{uuid.uuid4()}").status_code == 404
