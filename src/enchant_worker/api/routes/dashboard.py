"""The dashboard: server-rendered panels, refreshed in place by a few lines of JavaScript.

The sign-in form POSTs an admin key to `/dashboard`, which keeps it in an HttpOnly, SameSite=Strict cookie
(accepted for GET requests only) and redirects (303) to the page; the key never goes in an address.
`/dashboard/panels` renders the panels again every few seconds. No build step.
"""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Annotated

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from enchant_worker.api.auth import hash_key
from enchant_worker.api.deps import KEY_COOKIE, AdminDep, StoreDep
from enchant_worker.api.errors import responses
from enchant_worker.api.routes.queue import queue_stats, worker_public
from enchant_worker.api.schemas import QueueStats, WorkerPublic
from enchant_worker.api.store import Row, Store

router = APIRouter(tags=["dashboard"])
CHART_MINUTES = 30
FAILURES_SHOWN = 10
IMAGES_SHOWN = 12
COOKIE_MAX_AGE_S = 12 * 3600
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
NEEDS_ADMIN = ("That is a user key; the dashboard needs an admin key "
               "(`enchant-worker keys create --role admin`).")


def _template(name: str) -> str:
    return files("enchant_worker.api").joinpath("templates", name).read_text()


def _login(message: str, status_code: int, refresh: int) -> HTMLResponse:
    page = _template("login.html").replace("__MESSAGE__", escape(message)).replace("__REFRESH__", str(refresh))
    return HTMLResponse(page, status_code=status_code, headers={"Cache-Control": "no-store"})


SIGN_IN_PAGE = {"description": "the sign-in form, with why the key was refused", "content": {"text/html": {}}}


@router.get("/dashboard", response_class=HTMLResponse, responses={
    400: SIGN_IN_PAGE, 401: SIGN_IN_PAGE, 403: SIGN_IN_PAGE})
def dashboard(request: Request, store: StoreDep,
              refresh: Annotated[int, Query(ge=1, le=300, description="seconds between refreshes")] = 3) -> Response:
    """Queue depth by state and type, a throughput chart, workers with their current job and progress,
    recent failures and the latest images, refreshed in place. Admin keys only: without the sign-in
    cookie, the sign-in form (which POSTs the key to this address)."""
    if "key" in request.query_params:  # the old `?key=` sign-in: a key in an address ends up in logs
        return _login("Keys are not accepted in the address (it ends up in logs and history); "
                      "sign in with this form.", 400, refresh)
    cookie = request.cookies.get(KEY_COOKIE)
    row = _authenticate(store, cookie) if cookie else None
    if row is None:
        return _login("Sign in with an admin API key (`enchant-worker keys create --role admin`).", 401, refresh)
    if row["role"] != "admin":
        return _login(NEEDS_ADMIN, 403, refresh)
    page = (_template("dashboard.html").replace("__REFRESH__", str(refresh))
            .replace("__UPDATED__", datetime.now(UTC).strftime("%H:%M:%S UTC"))
            .replace("__PANELS_URL__", "/dashboard/panels").replace("__PANELS__", render_panels(store)))
    return HTMLResponse(page, headers={"Cache-Control": "no-store"})


@router.post("/dashboard", response_class=HTMLResponse, status_code=303, responses={
    303: {"description": "signed in: the key is kept in an HttpOnly, SameSite=Strict cookie; continue at "
                         "/dashboard"},
    401: SIGN_IN_PAGE, 403: SIGN_IN_PAGE})
def sign_in(request: Request, store: StoreDep,
            key: Annotated[str, Form(description="an admin API key")] = "",
            refresh: Annotated[int, Form(ge=1, le=300, description="seconds between refreshes")] = 3) -> Response:
    """The dashboard's sign-in form posts here. An admin key is kept in an HttpOnly, SameSite=Strict
    cookie (accepted for GET requests only) and the browser is sent on to the dashboard (303); the key
    never appears in an address."""
    row = _authenticate(store, key) if key else None
    if row is None:
        return _login("That key is unknown or revoked." if key else "Enter an admin API key.", 401, refresh)
    if row["role"] != "admin":
        return _login(NEEDS_ADMIN, 403, refresh)
    response = RedirectResponse(f"/dashboard?refresh={refresh}", status_code=303)
    response.set_cookie(KEY_COOKIE, key, max_age=COOKIE_MAX_AGE_S, httponly=True, samesite="strict",
                        secure=request.url.scheme == "https")
    return response


def _authenticate(store: Store, key: str) -> Row | None:
    try:
        return store.authenticate(hash_key(key))
    except UnicodeEncodeError:  # a lone surrogate: no key has one
        return None


@router.get("/dashboard/panels", response_class=HTMLResponse, responses=responses(401, 403))
def dashboard_panels(store: StoreDep, admin: AdminDep) -> HTMLResponse:
    """The dashboard's panels as an HTML fragment (what the page fetches to refresh itself)."""
    return HTMLResponse(render_panels(store), headers={"Cache-Control": "no-store"})


# -- rendering -------------------------------------------------------------------------------------

def render_panels(store: Store) -> str:
    stats = queue_stats(store, CHART_MINUTES)
    workers = [worker_public(r) for r in store.workers()]
    return "\n".join([
        _queue_panel(stats), _chart_panel(stats), _workers_panel(workers),
        _failures_panel(store.recent_failures(FAILURES_SHOWN)), _gallery_panel(store.images(viewer=None, limit=IMAGES_SHOWN)),
    ])


def _queue_panel(stats: QueueStats) -> str:
    totals = "".join(f'<div class="total">{s}<b id="total-{s}">{stats.totals.get(s, 0)}</b></div>' for s in STATUSES)
    rows = "".join(
        f"<tr><td>{escape(t.job_type)}</td>"
        + "".join(f'<td class="n" data-type="{escape(t.job_type)}" data-status="{s}">{t.counts.get(s, 0)}</td>'
                  for s in STATUSES)
        + f'<td class="n">{_seconds(t.oldest_pending_age_s)}</td><td class="n">{_seconds(t.p50_run_s)}</td>'
          f'<td class="n">{_seconds(t.p95_run_s)}</td></tr>'
        for t in stats.by_type)
    head = "".join(f'<th class="n">{s}</th>' for s in STATUSES)
    return (f'<section class="wide" id="queue"><h2>Queue</h2><div class="totals">{totals}</div>'
            f'<table id="depth"><tr><th>job type</th>{head}<th class="n">oldest pending</th>'
            f'<th class="n">p50 run</th><th class="n">p95 run</th></tr>{rows}</table></section>')


def _chart_panel(stats: QueueStats) -> str:
    width, height, pad = 600, 120, 16
    points = stats.throughput
    peak = max([p.completed + p.failed for p in points] + [1])
    bar = (width - 2 * pad) / max(len(points), 1)
    bars = []
    for i, p in enumerate(points):
        x = pad + i * bar
        h_ok = (height - 2 * pad) * p.completed / peak
        h_bad = (height - 2 * pad) * p.failed / peak
        bars.append(f'<rect x="{x:.1f}" y="{height - pad - h_ok:.1f}" width="{bar * 0.8:.1f}" height="{h_ok:.1f}" '
                    f'fill="#6a5acd"><title>{p.minute:%H:%M} completed {p.completed}</title></rect>')
        if p.failed:
            bars.append(f'<rect x="{x:.1f}" y="{height - pad - h_ok - h_bad:.1f}" width="{bar * 0.8:.1f}" '
                        f'height="{h_bad:.1f}" fill="#c33"><title>{p.minute:%H:%M} failed {p.failed}</title></rect>')
    done = sum(p.completed for p in points)
    return (f'<section id="throughput"><h2>Throughput (jobs finished per minute, last {stats.window_minutes} min: '
            f'<span id="completed-window">{done}</span> completed)</h2>'
            f'<svg viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="throughput chart">'
            f'<text x="{pad}" y="{pad - 4}">max {peak}/min</text>{"".join(bars)}'
            f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/></svg></section>')


def _workers_panel(workers: list[WorkerPublic]) -> str:
    rows = []
    for w in workers:
        jobs = "".join(f'<div>{escape(j.job_type)} <code>{str(j.id)[:8]}</code> <span class="bar">'
                       f'<i style="width:{j.progress_percent}%"></i></span> {j.progress_percent}% · '
                       f'leased {_seconds(j.lease_age_s)} ago</div>' for j in w.current_jobs) or "idle"
        memory = (f"{w.gpu_memory_used_mb or 0:.0f} / {w.gpu_memory_total_mb:.0f} MB"
                  if w.gpu_memory_total_mb else "—")
        stale = ' class="stale"' if w.heartbeat_age_s > 60 else ""
        rows.append(f"<tr><td>{escape(w.id)}<br><small>{escape(w.host)} · {escape(w.status)}</small></td>"
                    f"<td>{escape(str(w.device.get('name') or w.device.get('kind') or ''))}<br><small>{memory}</small></td>"
                    f"<td>{jobs}</td><td{stale}>{_seconds(w.heartbeat_age_s)} ago</td>"
                    f'<td class="n">{w.jobs_completed} / {w.jobs_failed}</td></tr>')
    body = "".join(rows) or '<tr><td colspan="5">no workers running</td></tr>'
    return (f'<section id="workers"><h2>Workers (<span id="worker-count">{len(workers)}</span>)</h2><table>'
            f'<tr><th>worker</th><th>device</th><th>current job</th><th>heartbeat</th><th class="n">done / failed</th>'
            f"</tr>{body}</table></section>")


def _failures_panel(failures: list[Row]) -> str:
    rows = "".join(f"<tr><td>{escape(f['job_type'])}<br><code>{str(f['id'])[:8]}</code></td>"
                   f'<td class="err">{escape((f["error_message"] or "")[:500])}</td>'
                   f"<td>{f['completed_at']:%H:%M:%S}</td></tr>" if f["completed_at"] else "" for f in failures)
    return (f'<section id="failures"><h2>Recent failures</h2><table>'
            f"{rows or '<tr><td>none</td></tr>'}</table></section>")


def _gallery_panel(images: list[Row]) -> str:
    figures = "".join(
        f'<figure><img loading="lazy" src="/v1/images/{i["id"]}/file" alt="{escape((i["prompt"] or "")[:100])}">'
        f'<figcaption>{escape((i["prompt"] or "")[:60])}</figcaption></figure>' for i in images)
    return (f'<section class="wide" id="gallery"><h2>Latest images</h2><div class="gallery">'
            f"{figures or 'no images yet'}</div></section>")


def _seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}min"
    return f"{value / 3600:.1f}h"
