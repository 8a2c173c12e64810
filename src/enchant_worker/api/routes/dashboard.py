"""The operations console (`/dashboard`): server-rendered pages for admins, kept current by server-sent
events, with actions on jobs.

Sign-in: the form POSTs an admin key to `/dashboard`, which keeps it in an HttpOnly, SameSite=Strict
cookie and redirects (303) to the page; the key never goes in an address. The console's own routes accept
that cookie (the API's routes accept it for GET requests only). Every POST of the console also needs the
page's CSRF token (an HMAC of the signed-in key's id) and is refused when the browser says it comes from
another site. Actions go through the queue's methods (`routes.jobs.act` / `bulk`), each recorded with the
key that made it. Rendering is in `api/console.py`; `console.css` and `console.js` ship in the package.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from html import escape
from importlib.resources import files
from typing import Annotated, Any, Literal, ParamSpec
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from enchant_worker.api import console, pagination
from enchant_worker.api.auth import Principal, hash_key
from enchant_worker.api.deps import KEY_COOKIE, AdminDep, QueueDep, StateDep, StoreDep
from enchant_worker.api.errors import BadRequest, Conflict, responses
from enchant_worker.api.routes.jobs import BULK_FROM, act, bulk
from enchant_worker.api.routes.loras import lora_public
from enchant_worker.api.routes.queue import queue_stats, worker_public
from enchant_worker.api.store import Row, Store
from enchant_worker.domain.jobs import JobStatus

router = APIRouter(tags=["dashboard"])
P = ParamSpec("P")
CHART_MINUTES = 30
FAILURES_SHOWN = 10
IMAGES_SHOWN = 12
STORIES_SHOWN = 200
JOBS_PER_PAGE = 50
BULK_MAX = 1000
EVENTS_MAX_S = 300.0  # a stream ends after this long and the browser opens a new one (keeps threads fresh)
KEEPALIVE_S = 15.0
STOP_CHECK_S = 0.25  # how often an idle stream looks whether the server is stopping
COOKIE_MAX_AGE_S = 12 * 3600
NEEDS_ADMIN = (
    "That is a user key; the dashboard needs an admin key (`enchant-worker keys create --role admin`)."
)
NO_STORE = {"Cache-Control": "no-store"}
STATIC = {"console.css": "text/css; charset=utf-8", "console.js": "text/javascript; charset=utf-8"}
Refresh = Annotated[int, Query(ge=1, le=300, description="seconds between live updates")]


def _template(name: str) -> str:
    return files("enchant_worker.api").joinpath("templates", name).read_text()


def _login(message: str, status_code: int, refresh: int) -> HTMLResponse:
    page = (
        _template("login.html").replace("__MESSAGE__", escape(message)).replace("__REFRESH__", str(refresh))
    )
    return HTMLResponse(page, status_code=status_code, headers=NO_STORE)


SIGN_IN_PAGE: dict[str, Any] = {
    "description": "the sign-in form, with why the key was refused",
    "content": {"text/html": {}},
}
HTML_PAGE: dict[str, Any] = {"content": {"text/html": {}}}


class SignedOut(Exception):
    """The console needs an admin key's cookie; answered with the sign-in form."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.message, self.status_code = message, status_code


def _authenticate(store: Store, key: str) -> Row | None:
    try:
        return store.authenticate(hash_key(key))
    except UnicodeEncodeError:  # a lone surrogate: no key has one
        return None


def _admin(request: Request, store: Store) -> Principal:
    cookie = request.cookies.get(KEY_COOKIE)
    row = _authenticate(store, cookie) if cookie else None
    if row is None:
        raise SignedOut("Sign in with an admin API key (`enchant-worker keys create --role admin`).", 401)
    if row["role"] != "admin":
        raise SignedOut(NEEDS_ADMIN, 403)
    return Principal(key_id=row["id"], name=row["name"], role=row["role"], user_id=row["user_id"])


def csrf_token(state: Any, store: Store, principal: Principal) -> str:
    """The signed-in key's CSRF token: an HMAC of its id (no server-side session to keep)."""
    secret = state.secret(store, "cursor")
    return hmac.new(secret, b"csrf:" + principal.key_id.bytes, hashlib.sha256).hexdigest()[:32]


def _check_post(request: Request, state: Any, store: Store, principal: Principal, token: str) -> None:
    """A console POST must come from this site's page: the browser's Sec-Fetch-Site/Origin, if sent, say
    so, and the form carries the page's CSRF token. Otherwise 403."""
    site = request.headers.get("sec-fetch-site")
    origin = request.headers.get("origin")
    expected_origin = f"{request.url.scheme}://{request.url.netloc}"
    if site not in (None, "same-origin", "none") or (
        origin not in (None, "null") and origin != expected_origin
    ):
        raise Forbidden403(
            "cross-site request refused: console actions must come from the console's own pages"
        )
    if not token or not hmac.compare_digest(token, csrf_token(state, store, principal)):
        raise Forbidden403("missing or wrong CSRF token: reload the page and try again")


class Forbidden403(Exception):
    """A console POST that did not come from the console's page."""


def _html(
    title: str,
    body: str,
    *,
    path: str,
    events: str | None = None,
    refresh: int = 3,
    status_code: int = 200,
    note: str = "",
) -> HTMLResponse:
    """A console page; `note` (what an action did) stays above the live part, which updates replace."""
    return HTMLResponse(
        console.page(title, body, path=path, events=events, refresh=refresh, note=note),
        status_code=status_code,
        headers=NO_STORE,
    )


def _console(handler: Callable[P, Response]) -> Callable[P, Response]:  # keeps the signature for FastAPI
    """Answers SignedOut with the sign-in form and Forbidden403 with a 403 page."""
    import functools

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Response:
        try:
            return handler(*args, **kwargs)
        except SignedOut as exc:
            return _login(exc.message, exc.status_code, 3)
        except Forbidden403 as exc:
            return _html("Refused", console.message(str(exc), "alert"), path="", status_code=403)
        except BadRequest as exc:
            return _html("Bad request", console.message(exc.detail, "alert"), path="", status_code=400)

    return wrapped


# -- sign-in and static files ---------------------------------------------------------------------


@router.get(
    "/dashboard",
    response_class=HTMLResponse,
    responses={400: SIGN_IN_PAGE, 401: SIGN_IN_PAGE, 403: SIGN_IN_PAGE},
)
def dashboard(
    request: Request,
    store: StoreDep,
    refresh: Refresh = 3,
    range_: Annotated[Literal["30m", "6h", "24h"], Query(alias="range")] = "30m",
    stream_s: Annotated[
        float | None, Query(gt=0, le=EVENTS_MAX_S, description="renew the live stream this often")
    ] = None,
) -> Response:
    """The overview: queue depth by state and type (with the age of the oldest job and whether a live
    worker serves each type), a throughput and failure chart over a chosen range, workers with their
    current jobs, recent failures and the latest images, kept current by server-sent events. Admin keys
    only: without the sign-in cookie, the sign-in form (which POSTs the key to this address)."""
    if "key" in request.query_params:  # the old `?key=` sign-in: a key in an address ends up in logs
        return _login(
            "Keys are not accepted in the address (it ends up in logs and history); sign in with this form.",
            400,
            refresh,
        )
    try:
        _admin(request, store)
    except SignedOut as exc:
        return _login(exc.message, exc.status_code, refresh)
    events = "/dashboard/events?" + urlencode(
        {"view": "overview", "range": range_, "refresh": refresh, **({"max_s": stream_s} if stream_s else {})}
    )
    return _html(
        "Overview", render_overview(store, range_), path="/dashboard", events=events, refresh=refresh
    )


@router.post(
    "/dashboard",
    response_class=HTMLResponse,
    status_code=303,
    responses={
        303: {
            "description": "signed in: the key is kept in an HttpOnly, SameSite=Strict cookie; continue at "
            "/dashboard"
        },
        401: SIGN_IN_PAGE,
        403: SIGN_IN_PAGE,
    },
)
def sign_in(
    request: Request,
    store: StoreDep,
    key: Annotated[str, Form(description="an admin API key")] = "",
    refresh: Annotated[int, Form(ge=1, le=300, description="seconds between refreshes")] = 3,
) -> Response:
    """The dashboard's sign-in form posts here. An admin key is kept in an HttpOnly, SameSite=Strict
    cookie and the browser is sent on to the dashboard (303); the key never appears in an address."""
    row = _authenticate(store, key) if key else None
    if row is None:
        return _login("That key is unknown or revoked." if key else "Enter an admin API key.", 401, refresh)
    if row["role"] != "admin":
        return _login(NEEDS_ADMIN, 403, refresh)
    response = RedirectResponse(f"/dashboard?refresh={refresh}", status_code=303)
    response.set_cookie(
        KEY_COOKIE,
        key,
        max_age=COOKIE_MAX_AGE_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/dashboard/static/{name}", include_in_schema=False)
def static_file(name: str) -> Response:
    """The console's stylesheet and script, shipped in the package (nothing is fetched from elsewhere)."""
    if name not in STATIC:
        return Response("not found", status_code=404)
    return Response(
        _template(name), media_type=STATIC[name], headers={"Cache-Control": "public, max-age=300"}
    )


# -- overview and live updates --------------------------------------------------------------------


def render_overview(store: Store, range_name: str = "30m") -> str:
    minutes, bucket_s = console.RANGES[range_name]
    stats = queue_stats(store, CHART_MINUTES, store.console_counts())
    workers = [worker_public(r) for r in store.workers()]
    return console.overview(
        stats,
        store.throughput_binned(minutes, bucket_s),
        bucket_s,
        range_name,
        workers,
        store.console_failures(FAILURES_SHOWN),
        store.images(viewer=None, limit=IMAGES_SHOWN),
    )


def render_panels(store: Store) -> str:
    """The overview's panels (what `/dashboard/panels` answers)."""
    return render_overview(store)


@router.get("/dashboard/panels", response_class=HTMLResponse, responses=responses(401, 403))
def dashboard_panels(store: StoreDep, admin: AdminDep) -> HTMLResponse:
    """The overview's panels as an HTML fragment (an admin key, or the console's cookie)."""
    return HTMLResponse(render_panels(store), headers=NO_STORE)


STREAMS_STOP = threading.Event()  # set when the server stops (cli: api, serve), so that no stream holds it up


def stop_streams() -> None:
    """Ends every open event stream within moments (call when the server is asked to stop)."""
    STREAMS_STOP.set()


@router.get("/dashboard/events", responses={200: {"content": {"text/event-stream": {}}}, 401: SIGN_IN_PAGE})
@_console
def events(
    request: Request,
    state: StateDep,
    store: StoreDep,
    view: Annotated[Literal["overview", "job", "workers", "lora", "scheduler"], Query()] = "overview",
    id_: Annotated[uuid.UUID | None, Query(alias="id")] = None,
    range_: Annotated[Literal["30m", "6h", "24h"], Query(alias="range")] = "30m",
    refresh: Refresh = 3,
    max_s: Annotated[float, Query(gt=0, le=EVENTS_MAX_S, description="end the stream after")] = EVENTS_MAX_S,
) -> Response:
    """Server-sent events for one console page: a `panels` event with the page's live part whenever it
    changed (checked every `refresh` seconds), a comment every 15 s to keep proxies from closing the
    stream, and `retry: 1000` so that the browser reconnects a second after the stream ends or drops."""
    _admin(request, store)
    if view in ("job", "lora") and id_ is None:
        raise BadRequest(f"id: the {view} view needs the id of a {view}")

    def render(s: Store) -> str:
        if view == "overview":
            return render_overview(s, range_)
        if view == "job" and id_ is not None:
            return render_job(s, id_)
        if view == "lora" and id_ is not None:
            return render_training(s, id_)
        if view == "workers":
            return console.workers_section([worker_public(r) for r in s.workers(include_stopped=True)])
        return render_scheduler(s)

    def render_now() -> str:
        with state.store() as s:
            return render(s)

    async def stream() -> AsyncIterator[str]:
        # async, with each render in the thread pool: an open stream holds no thread between updates
        yield "retry: 1000\n\n"
        started = last_sent = time.monotonic()
        previous = None
        while time.monotonic() - started < max_s and not STREAMS_STOP.is_set():
            html = await run_in_threadpool(render_now)
            if html != previous:
                previous, last_sent = html, time.monotonic()
                yield f"event: panels\ndata: {json.dumps({'html': html})}\n\n"
            elif time.monotonic() - last_sent > KEEPALIVE_S:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            wake = time.monotonic() + min(refresh, max(0.0, max_s - (time.monotonic() - started)))
            while time.monotonic() < wake and not STREAMS_STOP.is_set():  # the server stopping ends it now
                await asyncio.sleep(min(STOP_CHECK_S, max(0.0, wake - time.monotonic())))

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


# -- jobs -----------------------------------------------------------------------------------------

UUID_PREFIX = re.compile(r"^[0-9a-f]{1,32}$")


def _parse_time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise BadRequest(f"{name}: not a date and time; write e.g. 2026-01-31T12:00 (UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_uuid(value: str | None, name: str) -> uuid.UUID | None:
    if not value:
        return None
    try:
        return uuid.UUID(value.strip())
    except ValueError:
        raise BadRequest(f"{name}: not an id (a UUID such as 3f2a9c1d-…)") from None


def _job_filters(
    status: str | None,
    job_type: str | None,
    user_id: str | None,
    story_id: str | None,
    created_from: str | None,
    created_to: str | None,
) -> dict[str, Any]:
    if status and status not in console.STATUSES:
        raise BadRequest(f"status: one of {', '.join(console.STATUSES)}")
    if job_type and not re.fullmatch(r"[a-z][a-z0-9_]{0,99}", job_type):
        raise BadRequest("job_type: a job type name such as generate_image")
    return {
        "status": status or None,
        "job_type": job_type or None,
        "user_id": _parse_uuid(user_id, "user_id"),
        "story_id": _parse_uuid(story_id, "story_id"),
        "created_from": _parse_time(created_from, "created_from"),
        "created_to": _parse_time(created_to, "created_to"),
    }


Text = Annotated[str | None, Query(max_length=100)]


@router.get("/dashboard/jobs", response_class=HTMLResponse, responses={400: HTML_PAGE, 401: SIGN_IN_PAGE})
@_console
def jobs_page(
    request: Request,
    state: StateDep,
    store: StoreDep,
    status: Text = None,
    job_type: Text = None,
    user_id: Text = None,
    story_id: Text = None,
    created_from: Text = None,
    created_to: Text = None,
    q: Text = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """The job list, newest first, filtered by status, type, user, story and creation time, paged with the
    API's signed cursor; `q` finds a job by its id or the first characters of it."""
    principal = _admin(request, store)
    note = ""
    if q:
        found = _search(store, q.strip().lower())
        if len(found) == 1:
            return RedirectResponse(f"/dashboard/jobs/{found[0]['id']}", status_code=303)
        note = console.message(
            f"{len(found)} jobs have an id starting with {q!r}"
            if found
            else f"no job has an id starting with {q!r}",
            "note" if found else "alert",
        )
    filters = _job_filters(status, job_type, user_id, story_id, created_from, created_to)
    api_filters = {
        "status": filters["status"],
        "job_type": filters["job_type"],
        "user_id": filters["user_id"],
        "entity_type": None,
        "entity_id": None,
        "story_id": filters["story_id"],
        "created_from": filters["created_from"],
        "created_to": filters["created_to"],
    }
    secret = state.secret(store, "cursor")
    rows = (
        _search(store, q.strip().lower())
        if q
        else store.jobs(
            viewer=None,
            limit=JOBS_PER_PAGE + 1,
            after=pagination.position(secret, cursor, api_filters),
            **api_filters,
        )
    )
    items, next_cursor = pagination.page(secret, rows, JOBS_PER_PAGE, api_filters) if not q else (rows, None)
    values = {
        "status": status,
        "job_type": job_type,
        "user_id": user_id,
        "story_id": story_id,
        "created_from": created_from,
        "created_to": created_to,
        "q": q,
    }
    more = ""
    if next_cursor:
        more = (
            f'<p><a href="/dashboard/jobs?{console.e(urlencode({**{k: v for k, v in values.items() if v}, "cursor": next_cursor}))}">'
            "next page</a></p>"
        )
    types = sorted({t for t in state.job_types.job_types})
    body = (
        f'<section class="wide">{note}{console.job_filters(values, types, csrf_token(state, store, principal))}'
        f"{console.job_rows(items)}{more}</section>"
    )
    return _html("Jobs", body, path="/dashboard/jobs")


def _search(store: Store, text: str) -> list[Row]:
    """Jobs whose id starts with `text` (hex digits, dashes ignored): a range on the primary key."""
    digits = text.replace("-", "")
    if not UUID_PREFIX.match(digits):
        raise BadRequest("q: a job id, or its first characters (0-9, a-f)")
    low, high = uuid.UUID(digits.ljust(32, "0")), uuid.UUID(digits.ljust(32, "f"))
    return store.jobs_by_id_range(low, high, limit=20)


def render_job(store: Store, job_id: uuid.UUID) -> str:
    job = store.job(job_id)
    if job is None:
        return console.message(f"no job with id {job_id}", "alert")
    return console.job_detail(
        job,
        history=store.progress_history(job_id),
        actions=store.job_actions(job_id),
        images=store.images(viewer=None, limit=IMAGES_SHOWN, job_id=job_id),
    )


@router.get(
    "/dashboard/jobs/bulk", response_class=HTMLResponse, responses={400: HTML_PAGE, 401: SIGN_IN_PAGE}
)
@_console
def bulk_confirm(
    request: Request,
    state: StateDep,
    store: StoreDep,
    action: Annotated[Literal["cancel", "retry"], Query()],
    status: Text = None,
    job_type: Text = None,
    user_id: Text = None,
    story_id: Text = None,
    created_from: Text = None,
    created_to: Text = None,
) -> Response:
    """Asks before a bulk retry or cancel of the filtered set, saying how many jobs it would touch."""
    principal = _admin(request, store)
    filters = _job_filters(status, job_type, user_id, story_id, created_from, created_to)
    matching = store.job_ids_matching(limit=BULK_MAX, **filters)
    eligible = sum(1 for r in matching if r["status"] in BULK_FROM[action])
    described = ", ".join(f"{k} {v}" for k, v in filters.items() if v) or "no filter: every job"
    question = (
        f"{console.e(action.capitalize())} {eligible} of the {len(matching)} jobs matching "
        f"({console.e(described)})? Jobs in another state are left alone"
        + (f"; at most {BULK_MAX} jobs at a time." if len(matching) >= BULK_MAX else ".")
    )
    fields = {
        "action": action,
        "status": status,
        "job_type": job_type,
        "user_id": user_id,
        "story_id": story_id,
        "created_from": created_from,
        "created_to": created_to,
    }
    back = "/dashboard/jobs?" + urlencode({k: v for k, v in fields.items() if v and k != "action"})
    body = console.confirm(
        question, "/dashboard/jobs/bulk", csrf_token(state, store, principal), fields, back
    )
    return _html("Bulk " + action, body, path="/dashboard/jobs")


@router.post(
    "/dashboard/jobs/bulk", response_class=HTMLResponse, responses={403: HTML_PAGE, 401: SIGN_IN_PAGE}
)
@_console
def bulk_run(
    request: Request,
    state: StateDep,
    store: StoreDep,
    queue: QueueDep,
    action: Annotated[Literal["cancel", "retry"], Form()],
    csrf: Annotated[str, Form()] = "",
    status: Annotated[str | None, Form(max_length=100)] = None,
    job_type: Annotated[str | None, Form(max_length=100)] = None,
    user_id: Annotated[str | None, Form(max_length=100)] = None,
    story_id: Annotated[str | None, Form(max_length=100)] = None,
    created_from: Annotated[str | None, Form(max_length=100)] = None,
    created_to: Annotated[str | None, Form(max_length=100)] = None,
) -> Response:
    """Runs a confirmed bulk action (admin, CSRF token); each job's change is recorded as a bulk action."""
    principal = _admin(request, store)
    _check_post(request, state, store, principal, csrf)
    filters = _job_filters(status, job_type, user_id, story_id, created_from, created_to)
    result = bulk(store, queue, principal, action, filters, BULK_MAX)
    text = (
        f"{action}: {len(result.changed)} of {result.matched} matching jobs changed; "
        f"{len(result.skipped)} left alone (in another state)"
    )
    back = "/dashboard/jobs?" + urlencode(
        {
            k: v
            for k, v in {
                "status": status,
                "job_type": job_type,
                "user_id": user_id,
                "story_id": story_id,
                "created_from": created_from,
                "created_to": created_to,
            }.items()
            if v
        }
    )
    return _html(
        "Bulk " + action,
        console.message(text) + f'<p><a href="{console.e(back)}">back to the jobs</a></p>',
        path="/dashboard/jobs",
    )


@router.get(
    "/dashboard/jobs/{job_id}", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE, 404: HTML_PAGE}
)
@_console
def job_page(
    request: Request,
    store: StoreDep,
    job_id: uuid.UUID,
    refresh: Refresh = 3,
    done: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    """One job: summary with timings and worker, progress and its history, metadata, result, the error in
    full, the actions taken on it and by whom, its images; and the actions its state allows."""
    _admin(request, store)
    if store.job(job_id) is None:
        return _html(
            "Job not found", console.message(f"no job with id {job_id}", "alert"), path="", status_code=404
        )
    note = console.message(done) if done else ""
    events = "/dashboard/events?" + urlencode({"view": "job", "id": str(job_id), "refresh": refresh})
    return _html(
        f"Job {job_id}",
        render_job(store, job_id),
        path="/dashboard/jobs",
        events=events,
        refresh=refresh,
        note=note,
    )


ACTION_WORDS = {"cancel": "Cancel", "retry": "Retry", "priority": "Change the priority of"}


@router.get("/dashboard/jobs/{job_id}/confirm", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE})
@_console
def job_confirm(
    request: Request,
    state: StateDep,
    store: StoreDep,
    job_id: uuid.UUID,
    action: Annotated[Literal["cancel", "retry", "priority"], Query()],
    priority: Annotated[int | None, Query(ge=0, le=32767)] = None,
) -> Response:
    """Asks before an action on one job."""
    principal = _admin(request, store)
    job = store.job(job_id)
    if job is None:
        return _html(
            "Job not found", console.message(f"no job with id {job_id}", "alert"), path="", status_code=404
        )
    if action == "priority" and priority is None:
        raise BadRequest("priority: a number from 0 (most urgent) to 32767")
    what = f" to {priority} (now {job['priority']})" if action == "priority" else ""
    question = (
        f"{ACTION_WORDS[action]} job <code>{console.e(job_id)}</code> ({console.e(job['job_type'])}, "
        f"now {console.badge(job['status'])}){console.e(what)}?"
    )
    body = console.confirm(
        question,
        f"/dashboard/jobs/{job_id}/{action}",
        csrf_token(state, store, principal),
        {"priority": priority},
        f"/dashboard/jobs/{job_id}",
    )
    return _html(f"{ACTION_WORDS[action]} job", body, path="/dashboard/jobs")


@router.post(
    "/dashboard/jobs/{job_id}/{action}",
    response_class=HTMLResponse,
    responses={
        303: {"description": "done: back to the job's page"},
        403: HTML_PAGE,
        409: HTML_PAGE,
        401: SIGN_IN_PAGE,
    },
)
@_console
def job_action(
    request: Request,
    state: StateDep,
    store: StoreDep,
    queue: QueueDep,
    job_id: uuid.UUID,
    action: Annotated[Literal["cancel", "retry", "priority"], Path()],
    csrf: Annotated[str, Form()] = "",
    priority: Annotated[int | None, Form(ge=0, le=32767)] = None,
) -> Response:
    """Cancel, retry or re-prioritise one job (admin, CSRF token); 303 back to its page, or 409 naming
    the state that does not allow it."""
    principal = _admin(request, store)
    _check_post(request, state, store, principal, csrf)
    job = store.job(job_id)
    if job is None:
        return _html(
            "Job not found", console.message(f"no job with id {job_id}", "alert"), path="", status_code=404
        )
    if action == "priority" and priority is None:
        raise BadRequest("priority: a number from 0 (most urgent) to 32767")
    try:
        after = act(store, queue, principal, job, action, priority=priority)
    except Conflict as exc:
        return _html(
            "Not possible",
            console.message(f"{exc.detail} (the job is {exc.status})", "alert")
            + f'<p><a href="/dashboard/jobs/{job_id}">back to the job</a></p>',
            path="/dashboard/jobs",
            status_code=409,
        )
    done = f"{action} done by {principal.name}: the job is {after['status']}"
    if action == "cancel" and after["status"] == JobStatus.PROCESSING.value:
        done = f"cancel requested by {principal.name}: the running job stops at its next step"
    return RedirectResponse(f"/dashboard/jobs/{job_id}?{urlencode({'done': done})}", status_code=303)


# -- workers, LoRAs, scheduler, gallery ----------------------------------------------------------


@router.get("/dashboard/workers", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE})
@_console
def workers_page(request: Request, store: StoreDep, refresh: Refresh = 3) -> Response:
    """Workers: device, resident models and LoRAs, job types, current jobs with their stage and step,
    heartbeat age (stopped ones too)."""
    _admin(request, store)
    workers = [worker_public(r) for r in store.workers(include_stopped=True)]
    events = "/dashboard/events?" + urlencode({"view": "workers", "refresh": refresh})
    return _html(
        "Workers", console.workers_section(workers), path="/dashboard/workers", events=events, refresh=refresh
    )


@router.get("/dashboard/loras", response_class=HTMLResponse, responses={400: HTML_PAGE, 401: SIGN_IN_PAGE})
@_console
def loras_page(
    request: Request,
    state: StateDep,
    store: StoreDep,
    status: Annotated[Literal["training", "ready", "failed"] | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Every LoRA with its status, owner, base model, training job and error; each links to its training page."""
    _admin(request, store)
    filters: dict[str, Any] = {"scope": "visible", "status": status, "owner": None, "is_public": None}
    secret = state.secret(store, "cursor")
    rows = store.loras(
        viewer=None,
        me=None,
        limit=JOBS_PER_PAGE + 1,
        status=status,
        mine_only=False,
        after=pagination.position(secret, cursor, filters),
    )
    items, next_cursor = pagination.page(secret, rows, JOBS_PER_PAGE, filters)
    loras = [{**r, **lora_public(r).model_dump()} for r in items]
    next_url = (
        "/dashboard/loras?"
        + urlencode({k: v for k, v in {"status": status, "cursor": next_cursor}.items() if v})
        if next_cursor
        else None
    )
    links = " ".join(
        f'<a href="/dashboard/loras?status={s}">{s}</a>' for s in ("training", "ready", "failed")
    )
    return _html(
        "LoRAs",
        f'<section class="wide"><p>status: <a href="/dashboard/loras">all</a> {links}</p></section>'
        + console.loras_section(loras, next_url),
        path="/dashboard/loras",
    )


def render_training(store: Store, lora_id: uuid.UUID) -> str:
    row = store.lora(lora_id)
    if row is None:
        return console.message(f"no LoRA with id {lora_id}", "alert")
    lora = {**row, **lora_public(row).model_dump()}
    job_id = lora.get("training_job_id")
    job = store.job(job_id) if job_id else None
    return console.training_page(lora, job, store.progress_history(job_id) if job_id else [])


@router.get("/dashboard/loras/{lora_id}", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE})
@_console
def training_page(request: Request, store: StoreDep, lora_id: uuid.UUID, refresh: Refresh = 3) -> Response:
    """A LoRA's training: step, loss, s/step and ETA, the loss curve, the preview image, checkpoints."""
    _admin(request, store)
    row = store.lora(lora_id)
    title = f"LoRA {row['name']}" if row else "LoRA not found"
    events = "/dashboard/events?" + urlencode({"view": "lora", "id": str(lora_id), "refresh": refresh})
    return _html(
        title,
        render_training(store, lora_id),
        path="/dashboard/loras",
        events=events,
        refresh=refresh,
        status_code=200 if row else 404,
    )


def render_scheduler(store: Store) -> str:
    return console.scheduler_section(
        store.scheduler_leader(), store.scheduler_tasks(), store.scheduler_failures(20)
    )


@router.get("/dashboard/scheduler", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE})
@_console
def scheduler_page(request: Request, store: StoreDep, refresh: Refresh = 3) -> Response:
    """The scheduler: which process leads, each maintenance task's latest run, failures."""
    _admin(request, store)
    events = "/dashboard/events?" + urlencode({"view": "scheduler", "refresh": refresh})
    return _html(
        "Scheduler", render_scheduler(store), path="/dashboard/scheduler", events=events, refresh=refresh
    )


@router.get("/dashboard/images", response_class=HTMLResponse, responses={400: HTML_PAGE, 401: SIGN_IN_PAGE})
@_console
def gallery_page(
    request: Request,
    state: StateDep,
    store: StoreDep,
    job_id: Text = None,
    story_id: Text = None,
    lora_id: Text = None,
    min_quality: Text = None,
    cursor: Annotated[str | None, Query(max_length=1000)] = None,
) -> Response:
    """Every image, newest first (filtered by job, story, LoRA or minimum quality score), each with its
    quality score; each opens full size with its parameters and quality analysis."""
    _admin(request, store)
    filters: dict[str, Any] = {
        "job_id": _parse_uuid(job_id, "job_id"),
        "scene_id": None,
        "story_id": _parse_uuid(story_id, "story_id"),
        "lora_id": _parse_uuid(lora_id, "lora_id"),
        "created_from": None,
        "created_to": None,
        "min_quality": _parse_quality(min_quality),
    }
    secret = state.secret(store, "cursor")
    rows = store.images(
        viewer=None, limit=48 + 1, after=pagination.position(secret, cursor, filters), **filters
    )
    items, next_cursor = pagination.page(secret, rows, 48, filters)
    given = {
        k: v
        for k, v in {
            "job_id": job_id,
            "story_id": story_id,
            "lora_id": lora_id,
            "min_quality": min_quality,
        }.items()
        if v
    }
    more = "/dashboard/images?" + urlencode({**given, "cursor": next_cursor}) if next_cursor else None
    return _html(
        "Gallery",
        console.gallery_section(items, title="Images", more=more, filters=console.gallery_filters(given)),
        path="/dashboard/images",
    )


def _parse_quality(value: str | None) -> float | None:
    if not value or not value.strip():
        return None
    try:
        score = float(value.strip())
    except ValueError:
        score = float("nan")
    if not 0.0 <= score <= 1.0:  # NaN fails too
        raise BadRequest(f"min_quality: a quality score from 0 to 1 (e.g. 0.5), not {value.strip()[:40]!r}")
    return score


@router.get("/dashboard/images/{image_id}", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE})
@_console
def image_page(request: Request, store: StoreDep, image_id: uuid.UUID) -> Response:
    """One image full size with its prompt, seed, model, parameters and timings."""
    _admin(request, store)
    image = store.image(image_id)
    if image is None:
        return _html(
            "Image not found",
            console.message(f"no image with id {image_id}", "alert"),
            path="",
            status_code=404,
        )
    return _html("Image", console.image_detail(image), path="/dashboard/images")


@router.get("/dashboard/stories", response_class=HTMLResponse, responses={401: SIGN_IN_PAGE})
@_console
def stories_page(request: Request, store: StoreDep) -> Response:
    """Stories, newest first, with their latest analysis' overall score; each opens its story page."""
    from enchant_worker.api import console_story
    from enchant_worker.sql import q

    _admin(request, store)
    rows = store.conn.execute(q("analysis_console_stories"), {"limit": STORIES_SHOWN}).fetchall()
    return _html("Stories", console_story.stories_section(rows), path="/dashboard/stories")


@router.get(
    "/dashboard/stories/{story_id}",
    response_class=HTMLResponse,
    responses={401: SIGN_IN_PAGE, 404: HTML_PAGE},
)
@_console
def story_page(request: Request, store: StoreDep, story_id: uuid.UUID) -> Response:
    """A story's analysis: its scores as a chart, the pacing curve, enhancement rules and suggestions."""
    from enchant_worker import story_analysis_store as analysis_store
    from enchant_worker.api import console_story
    from enchant_worker.sql import q

    _admin(request, store)
    story = store.conn.execute(q("analysis_console_story"), {"id": story_id}).fetchone()
    if story is None:
        return _html(
            "Story not found",
            console.message(f"no story with id {story_id}", "alert"),
            path="",
            status_code=404,
        )
    document = analysis_store.stored(store.conn, "story", story_id, analysis_store.STORY_KEY)
    stale = document is not None and analysis_store.is_stale(store.conn, story_id, document)
    return _html(
        f"Story {story['title']}", console_story.story_page(story, document, stale), path="/dashboard/stories"
    )
