"""The operations console's pages, rendered on the server as HTML (every value escaped here).

Sidekiq's and Flower's information architecture: an overview (queues, throughput, workers, failures,
images), a job list with filters and a page per job with its actions, workers, LoRAs with a training page,
the scheduler, and a gallery. Each page is complete without JavaScript; `console.js` only keeps the
`#live` part of a page current from the server-sent events of `/dashboard/events`. Routes live in
`api/routes/dashboard.py`; this module only turns rows into markup.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urlencode

from enchant_worker.api.schemas import QueueStats, WorkerPublic
from enchant_worker.api.store import Row

STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
FINISHED = ("completed", "failed", "cancelled")  # the overview counts these over the last 24 hours
LIVE_WORKER_S = 60.0  # a worker whose last heartbeat is older is not counted as serving its types
RANGES = {"30m": (30, 60), "6h": (360, 600), "24h": (1440, 1800)}  # minutes shown, seconds per bar
NAV = (
    ("/dashboard", "Overview"),
    ("/dashboard/jobs", "Jobs"),
    ("/dashboard/workers", "Workers"),
    ("/dashboard/loras", "LoRAs"),
    ("/dashboard/scheduler", "Scheduler"),
    ("/dashboard/images", "Gallery"),
    ("/dashboard/stories", "Stories"),
)


def e(value: Any) -> str:
    """Escaped text of any value (None as an em dash)."""
    return "—" if value is None else escape(str(value))


def page(
    title: str, body: str, *, path: str, events: str | None = None, refresh: int = 3, note: str = ""
) -> str:
    """A whole console page: header with the navigation, the body, the script that keeps `#live` current."""
    nav = "".join(
        f'<a href="{href}"{" aria-current=page" if href == path else ""}>{label}</a>' for href, label in NAV
    )
    live = f' data-events="{e(events)}"' if events else ""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} — Enchant Worker</title>"
        f'<link rel="stylesheet" href="/dashboard/static/console.css"></head><body>'
        f'<a class="skip" href="#main">Skip to content</a>'
        f'<header><span class="brand">Enchant Worker</span><nav aria-label="console">{nav}</nav>'
        f'<span class="status" role="status">refreshes every {refresh} s · '
        f'<span id="updated">{datetime.now(UTC):%H:%M:%S} UTC</span></span></header>'
        f'<main id="main"><h1>{e(title)}</h1>{note}<div id="live"{live}>{body}</div></main>'
        f'<script src="/dashboard/static/console.js"></script></body></html>'
    )


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 120:
        return f"{value:.1f}s"
    if value < 7200:
        return f"{value / 60:.1f}min"
    return f"{value / 3600:.1f}h"


def when(value: datetime | None) -> str:
    return "—" if value is None else f'<time datetime="{value.isoformat()}">{value:%Y-%m-%d %H:%M:%S}</time>'


def table(
    head: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    empty: str = "none",
    numeric: Iterable[int] = (),
    caption: str | None = None,
) -> str:
    """A table whose rows turn into labelled cards on narrow screens (cells carry their column's name).
    Cells are markup: escape values before passing them."""
    numeric = set(numeric)
    cls = [' class="n"' if i in numeric else "" for i in range(len(head))]
    body = "".join(
        "<tr>"
        + "".join(f'<td{cls[i]} data-label="{e(head[i])}">{cell}</td>' for i, cell in enumerate(r))
        + "</tr>"
        for r in rows
    )
    if not body:
        body = f'<tr><td colspan="{len(head)}">{e(empty)}</td></tr>'
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return (
        f'<table class="cards">{cap}<thead><tr>'
        + "".join(f'<th scope="col"{cls[i]}>{e(h)}</th>' for i, h in enumerate(head))
        + f"</tr></thead><tbody>{body}</tbody></table>"
    )


def job_link(job_id: Any, text: str | None = None) -> str:
    return f'<a class="id" href="/dashboard/jobs/{e(job_id)}">{e(text or str(job_id)[:8])}</a>'


def badge(status: str | None) -> str:
    return f'<span class="badge {e(status)}">{e(status)}</span>'


def stage_text(progress: dict[str, Any] | None, percent: int | None = None) -> str:
    """What a job is doing: its stage, step/total, loss, s/step and ETA when it reported them."""
    p = progress if isinstance(progress, dict) else {}
    parts = [str(p["stage"])] if p.get("stage") else []
    if p.get("step") is not None and p.get("total"):
        parts.append(f"step {p['step']}/{p['total']}")
    if isinstance(p.get("loss"), int | float):
        parts.append(f"loss {p['loss']:.4g}")
    if p.get("s_per_step") is not None:
        parts.append(f"{p['s_per_step']} s/step")
    if p.get("eta_s") is not None:
        parts.append(f"ETA {seconds(float(p['eta_s']))}")
    if percent is not None:
        parts.append(f"{percent}%")
    return " · ".join(e(x) for x in parts) or "—"


def bar(percent: int) -> str:
    return (
        f'<span class="bar" role="progressbar" aria-valuenow="{int(percent)}" aria-valuemin="0" '
        f'aria-valuemax="100" aria-label="progress"><i style="width:{int(percent)}%"></i></span>'
    )


def pre_json(value: Any) -> str:
    return f"<pre>{e(json.dumps(value, indent=2, sort_keys=True, default=str))}</pre>"


# -- charts ---------------------------------------------------------------------------------------


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    magnitude = 10.0 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * magnitude:
            return step * magnitude
    return 10 * magnitude


def throughput_chart(points: list[Row], bucket_s: int, range_name: str) -> str:
    """Stacked bars (completed, failed) per bucket, with labelled axes: jobs per bucket and UTC time."""
    width, height, left, bottom, top, right = 640, 200, 44, 34, 12, 8
    peak = _nice_max(max([p["completed"] + p["failed"] for p in points] + [0]))
    plot_w, plot_h = width - left - right, height - top - bottom
    slot = plot_w / max(len(points), 1)
    parts = []
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{peak * frac:g}</text>'
        )
    for i, p in enumerate(points):
        x = left + i * slot
        h_ok, h_bad = plot_h * p["completed"] / peak, plot_h * p["failed"] / peak
        label = f"{p['start']:%H:%M} UTC: {p['completed']} completed, {p['failed']} failed"
        parts.append(
            f"<g><title>{e(label)}</title>"
            f'<rect class="ok" x="{x:.1f}" y="{top + plot_h - h_ok:.1f}" width="{max(slot * 0.8, 0.5):.1f}" '
            f'height="{h_ok:.1f}"/>'
            f'<rect class="bad" x="{x:.1f}" y="{top + plot_h - h_ok - h_bad:.1f}" '
            f'width="{max(slot * 0.8, 0.5):.1f}" height="{h_bad:.1f}"/></g>'
        )
    for i in sorted({0, len(points) // 2, len(points) - 1}) if points else []:
        x = left + i * slot + slot * 0.4
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
            f"{points[i]['start']:%H:%M}</text>"
        )
    per = f"{bucket_s // 60} min" if bucket_s >= 60 else f"{bucket_s} s"
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis">'
        f"time (UTC), one bar per {per}</text>"
        f'<text transform="translate(11 {top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'class="axis">jobs per {per}</text>'
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="axisline"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axisline"/>'
    )
    done = sum(p["completed"] for p in points)
    failed = sum(p["failed"] for p in points)
    links = " ".join(
        f'<a href="/dashboard?{urlencode({"range": r})}"{" aria-current=true" if r == range_name else ""}>'
        f"{r}</a>"
        for r in RANGES
    )
    return (
        f'<div class="chart-head"><span>last {e(range_name)}: <b id="completed-window">{done}</b> completed, '
        f'<b id="failed-window">{failed}</b> failed</span><span class="ranges">range: {links}</span></div>'
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="jobs finished per {per} over the last {e(range_name)}: {done} completed, {failed} failed">'
        f'{"".join(parts)}</svg><p class="legend"><span class="key ok"></span> completed '
        f'<span class="key bad"></span> failed</p>'
    )


def line_chart(points: list[tuple[float, float]], *, x_label: str, y_label: str, name: str) -> str:
    """A line over (x, y) points with labelled axes (the training loss curve)."""
    if not points:
        return '<p class="muted">no points yet</p>'
    width, height, left, bottom, top, right = 640, 200, 66, 34, 12, 10
    plot_w, plot_h = width - left - right, height - top - bottom
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1

    def at(x: float, y: float) -> str:
        return f"{left + plot_w * (x - x0) / (x1 - x0):.1f},{top + plot_h * (1 - (y - y0) / (y1 - y0)):.1f}"

    parts = [f'<polyline class="line" points="{" ".join(at(x, y) for x, y in points)}"/>']
    for frac in (0, 0.5, 1):
        y = top + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>'
            f'<text x="{left - 4}" y="{y + 3:.1f}" text-anchor="end">{y0 + (y1 - y0) * frac:.4g}</text>'
        )
    for frac in (0, 0.5, 1):
        parts.append(
            f'<text x="{left + plot_w * frac:.1f}" y="{top + plot_h + 14}" text-anchor="middle">'
            f"{x0 + (x1 - x0) * frac:.0f}</text>"
        )
    parts.append(
        f'<text x="{left + plot_w / 2:.0f}" y="{height - 4}" text-anchor="middle" class="axis">{e(x_label)}</text>'
        f'<text transform="translate(11 {top + plot_h / 2:.0f}) rotate(-90)" text-anchor="middle" '
        f'class="axis">{e(y_label)}</text>'
        f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" class="axisline"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" class="axisline"/>'
    )
    return (
        f'<svg class="chart" id="{e(name)}" data-points="{len(points)}" viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="{e(y_label)} by {e(x_label)}, {len(points)} points, latest {ys[-1]:.4g}">'
        f"{''.join(parts)}</svg>"
    )


# -- overview -------------------------------------------------------------------------------------


def serving(workers: list[WorkerPublic]) -> dict[str, int]:
    """How many live workers (running, heartbeat within LIVE_WORKER_S) serve each job type."""
    out: dict[str, int] = {}
    for w in workers:
        if w.status == "running" and w.heartbeat_age_s <= LIVE_WORKER_S:
            for t in w.job_types:
                out[t] = out.get(t, 0) + 1
    return out


def overview(
    stats: QueueStats,
    throughput: list[Row],
    bucket_s: int,
    range_name: str,
    workers: list[WorkerPublic],
    failures: list[Row],
    images: list[Row],
) -> str:
    totals = "".join(
        f'<a class="total" href="/dashboard/jobs?status={s}">{s}{" (24 h)" if s in FINISHED else ""}'
        f'<b id="total-{s}">{stats.totals.get(s, 0)}</b></a>'
        for s in STATUSES
    )
    served = serving(workers)
    rows = []
    for t in stats.by_type:
        pending = t.counts.get("pending", 0)
        hint = (
            ' <span class="warn">no live worker serves this type</span>'
            if pending and not served.get(t.job_type)
            else ""
        )
        rows.append(
            [
                f'<a href="/dashboard/jobs?job_type={e(t.job_type)}">{e(t.job_type)}</a>{hint}',
                *[
                    f'<a href="/dashboard/jobs?{urlencode({"job_type": t.job_type, "status": s})}">'
                    f"{t.counts.get(s, 0)}</a>"
                    for s in STATUSES
                ],
                seconds(t.oldest_pending_age_s),
                seconds(t.p50_run_s),
                seconds(t.p95_run_s),
                str(served.get(t.job_type, 0)),
            ]
        )
    depth = table(
        [
            "job type",
            *[f"{s} (24 h)" if s in FINISHED else s for s in STATUSES],
            "oldest pending",
            "p50 run",
            "p95 run",
            "live workers",
        ],
        rows,
        numeric=range(1, 10),
        empty="no jobs yet",
    )
    return (
        f'<section class="wide" id="queue"><h2>Queue</h2><div class="totals">{totals}</div>{depth}</section>'
        f'<section class="wide" id="throughput"><h2>Throughput</h2>'
        f"{throughput_chart(throughput, bucket_s, range_name)}</section>"
        f"{workers_section(workers, brief=True)}{failures_section(failures)}{gallery_section(images)}"
    )


def workers_section(workers: list[WorkerPublic], *, brief: bool = False) -> str:
    rows = []
    for w in workers:
        jobs = (
            "".join(
                f"<div>{e(j.job_type)} {job_link(j.id)} {bar(j.progress_percent)} "
                f"{stage_text(j.progress, j.progress_percent)} · leased {seconds(j.lease_age_s)} ago</div>"
                for j in w.current_jobs
            )
            or "idle"
        )
        memory = (
            f"{w.gpu_memory_used_mb or 0:.0f} / {w.gpu_memory_total_mb:.0f} MB"
            if w.gpu_memory_total_mb
            else "—"
        )
        device = e(w.device.get("name") or w.device.get("kind") or "")
        stale = ' class="warn"' if w.heartbeat_age_s > LIVE_WORKER_S else ""
        row = [
            f"{e(w.id)}<br><small>{e(w.host)} · pid {w.pid} · {e(w.status)}</small>",
            f"{device}<br><small>{memory}</small>",
            jobs,
            f"<span{stale}>{seconds(w.heartbeat_age_s)} ago</span>",
            f"{w.jobs_completed} / {w.jobs_failed}",
        ]
        if not brief:
            models = ", ".join(map(str, w.device.get("loaded_models") or [])) or "—"
            loras = (
                ", ".join(map(str, w.device.get("loaded_loras") or w.device.get("resident_loras") or []))
                or "—"
            )
            row[1:2] = [
                f"{device}<br><small>{memory}</small>",
                f"{e(models)}<br><small>LoRAs: {e(loras)}</small>",
                f"{', '.join(map(e, w.job_types))}<br><small>concurrency {w.concurrency}</small>",
            ]
        rows.append(row)
    head = ["worker", "device", "current jobs", "heartbeat", "done / failed"]
    if not brief:
        head[1:2] = ["device", "resident models", "job types"]
    return (
        f'<section class="wide" id="workers"><h2><a href="/dashboard/workers">Workers</a> '
        f'(<span id="worker-count">{len(workers)}</span>)</h2>'
        f"{table(head, rows, empty='no workers running', numeric=[len(head) - 1])}</section>"
    )


def failures_section(failures: list[Row]) -> str:
    rows = [
        [
            f"{e(f['job_type'])}<br>{job_link(f['id'])}",
            f'<span class="err">{e((f["error_message"] or "")[:500])}</span>',
            when(f["completed_at"]),
        ]
        for f in failures
    ]
    return (
        f'<section class="wide" id="failures"><h2><a href="/dashboard/jobs?status=failed">Recent failures</a></h2>'
        f"{table(['job', 'error', 'at'], rows)}</section>"
    )


def gallery_section(
    images: list[Row], *, title: str = "Latest images", more: str | None = None, filters: str = ""
) -> str:
    figures = "".join(
        f'<figure><a href="/dashboard/images/{e(i["id"])}"><img loading="lazy" src="/v1/images/{e(i["id"])}/file" '
        f'alt="{e((i["prompt"] or "image")[:120])}" width="128" height="128"></a>'
        f"<figcaption>{quality_badge(i)} {e((i['prompt'] or '')[:60])}</figcaption></figure>"
        for i in images
    )
    link = f'<p><a href="{e(more)}">next page</a></p>' if more else ""
    return (
        f'<section class="wide" id="gallery"><h2><a href="/dashboard/images">{e(title)}</a></h2>{filters}'
        f'<div class="gallery">{figures or "no images yet"}</div>{link}</section>'
    )


QUALITY_LOW = 0.4  # below: shown as poor; from QUALITY_GOOD up: good
QUALITY_GOOD = 0.7


def quality_badge(image: Row) -> str:
    """The image's quality score as a small badge ('?' where not analysed), its flags in the title."""
    quality = image.get("quality") or {}
    score = image.get("quality_score")
    flags = ", ".join(quality.get("flags") or []) or "no flags"
    if score is None:
        why = quality.get("reason") or "not analysed"
        return f'<span class="badge quality" title="quality unknown: {e(why)}">q ?</span>'
    kind = "poor" if score < QUALITY_LOW else "good" if score >= QUALITY_GOOD else "fair"
    return f'<span class="badge quality {kind}" title="quality {score:.2f}: {e(flags)}">q {score:.2f}</span>'


def gallery_filters(values: dict[str, Any]) -> str:
    """The gallery's filter form (GET): job, story, LoRA, minimum quality score."""

    def text(name: str, label: str, placeholder: str = "") -> str:
        return (
            f'<label>{label}<input name="{name}" value="{e(values.get(name) or "")}" '
            f'placeholder="{e(placeholder)}"></label>'
        )

    return (
        f'<form class="filters" method="get" action="/dashboard/images" role="search">'
        f"{text('job_id', 'job id')}{text('story_id', 'story id')}{text('lora_id', 'LoRA id')}"
        f"{text('min_quality', 'minimum quality (0-1)', 'e.g. 0.5')}"
        f'<button type="submit">filter</button></form>'
    )


# -- jobs -----------------------------------------------------------------------------------------


def job_filters(values: dict[str, Any], job_types: list[str], csrf: str) -> str:
    """The job list's filter form (GET) and search by id, and the bulk actions on the filtered set."""

    def opt(name: str, options: Iterable[str]) -> str:
        current = values.get(name) or ""
        return "".join(
            f'<option value="{e(o)}"{" selected" if o == current else ""}>{e(o or "any")}</option>'
            for o in ["", *options]
        )

    def text(name: str, label: str, placeholder: str = "") -> str:
        return (
            f'<label>{label}<input name="{name}" value="{e(values.get(name) or "")}" '
            f'placeholder="{e(placeholder)}"></label>'
        )

    query = urlencode({k: v for k, v in values.items() if v and k != "q"})
    bulk = (
        f'<p class="bulk">For every job matching these filters: '
        f'<a class="button" href="/dashboard/jobs/bulk?{e(query)}&amp;action=retry">retry…</a> '
        f'<a class="button danger" href="/dashboard/jobs/bulk?{e(query)}&amp;action=cancel">cancel…</a> '
        f"(each asks for confirmation first)</p>"
    )
    return (
        f'<form class="filters" method="get" action="/dashboard/jobs" role="search">'
        f"{text('q', 'job id (or its first characters)', 'e.g. 3f2a9c1d')}"
        f'<label>status<select name="status">{opt("status", STATUSES)}</select></label>'
        f'<label>type<select name="job_type">{opt("job_type", job_types)}</select></label>'
        f"{text('user_id', 'user id')}{text('story_id', 'story id')}"
        f"{text('created_from', 'created from (UTC)', '2026-01-31T12:00')}"
        f"{text('created_to', 'created before (UTC)', '2026-01-31T13:00')}"
        f'<button type="submit">Filter</button> <a href="/dashboard/jobs">clear</a></form>{bulk}'
    )


def job_rows(jobs: list[Row]) -> str:
    rows = [
        [
            job_link(j["id"], str(j["id"])),
            e(j["job_type"]),
            badge(j["status"])
            + (f'<br><span class="err">{e(j["error_message"][:160])}</span>' if j["error_message"] else ""),
            f"<span>{bar(j['progress_percent'])} {stage_text(j['progress'], j['progress_percent'])}</span>"
            if j["status"] == "processing"
            else "",
            e(j["priority"]),
            f"{j['attempts']}/{j['max_attempts']}",
            e(j["user_id"]),
            when(j["created_at"]),
        ]
        for j in jobs
    ]
    return table(
        ["id", "type", "status", "progress", "priority", "attempts", "user", "created"],
        rows,
        empty="no jobs match",
        numeric=[4, 5],
    )


def job_detail(job: Row, *, history: list[Row], actions: list[Row], images: list[Row]) -> str:
    started, done = job["started_at"], job["completed_at"]
    wait = (started - job["created_at"]).total_seconds() if started else None
    run = (done - started).total_seconds() if started and done else None
    facts = [
        ("status", badge(job["status"]) + (" · cancel requested" if job["cancel_requested"] else "")),
        ("type", e(job["job_type"])),
        ("priority", e(job["priority"])),
        (
            "attempts",
            f"{job['attempts']} of {job['max_attempts']} (errors {job['errors']}, crashes {job['crashes']})",
        ),
        ("user", e(job["user_id"])),
        ("entity", f"{e(job['entity_type'])} {e(job['entity_id'])}"),
        ("story", e(job.get("story_id"))),
        ("worker", e(job["leased_by"])),
        ("created", when(job["created_at"])),
        ("run after", when(job["run_after"])),
        ("started", when(started)),
        ("finished", when(done)),
        ("heartbeat", when(job["heartbeat_at"])),
        ("waited in queue", seconds(wait)),
        ("ran for", seconds(run)),
        ("idempotency key", e(job["idempotency_key"])),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    progress = (
        f'<p id="job-progress">{bar(job["progress_percent"])} '
        f'<span id="job-stage">{stage_text(job["progress"], job["progress_percent"])}</span></p>'
    )
    error = (
        f'<section class="wide" id="job-error"><h2>Error</h2><pre class="err">{e(job["error_message"])}</pre>'
        f"</section>"
        if job["error_message"]
        else ""
    )
    hist = [
        [when(h["at"]), e(h["attempt"]), f"{h['percent']}%", stage_text(h["progress"])] for h in history[-50:]
    ]
    losses = [
        (float(h["progress"]["step"]), float(h["progress"]["loss"]))
        for h in history
        if isinstance(h["progress"], dict)
        and h["progress"].get("loss") is not None
        and h["progress"].get("step") is not None
    ]
    curve = (
        f'<section class="wide" id="loss"><h2>Training loss</h2>'
        f"{line_chart(losses, x_label='step', y_label='loss', name='loss-chart')}</section>"
        if losses
        else ""
    )
    acts = [
        [
            when(a["created_at"]),
            e(a["action"]) + (" (bulk)" if a["bulk"] else ""),
            e(a["key_name"]),
            f"{e(a['from_status'])} → {e(a['to_status'])}",
            e(json.dumps(a["detail"])) if a["detail"] else "",
        ]
        for a in actions
    ]
    return (
        f'<section class="wide" id="job-summary"><h2>Summary</h2>{progress}<dl class="facts">{dl}</dl>'
        f"{job_action_links(job)}</section>{error}{curve}"
        f'<section id="job-metadata"><h2>Metadata</h2>{pre_json(job["metadata"])}</section>'
        f'<section id="job-result"><h2>Result</h2>{pre_json(job["result"]) if job["result"] else "none yet"}</section>'
        f'<section class="wide" id="job-history"><h2>Progress history (latest 50)</h2>'
        f"{table(['at', 'attempt', 'percent', 'stage'], hist, empty='no progress reported')}</section>"
        f'<section class="wide" id="job-actions"><h2>Actions taken</h2>'
        f"{table(['at', 'action', 'by', 'state', 'detail'], acts)}</section>"
        f"{gallery_section(images, title='Images of this job') if images else ''}"
    )


def job_action_links(job: Row) -> str:
    """The actions this job's state allows; each opens a confirmation page first."""
    base = f"/dashboard/jobs/{e(job['id'])}/confirm?action="
    links = []
    if job["status"] in ("pending", "processing"):
        links.append(f'<a class="button danger" href="{base}cancel">Cancel…</a>')
        links.append(
            f'<form method="get" action="/dashboard/jobs/{e(job["id"])}/confirm" class="inline">'
            f'<input type="hidden" name="action" value="priority"><label>priority '
            f'<input type="number" name="priority" min="0" max="32767" value="{job["priority"]}" '
            f'class="short"></label> <button type="submit">Change…</button></form>'
        )
    if job["status"] in ("failed", "cancelled"):
        links.append(f'<a class="button" href="{base}retry">Retry…</a>')
    return f'<div class="actions">{" ".join(links)}</div>' if links else ""


def confirm(question: str, action_url: str, csrf: str, fields: dict[str, Any], back: str) -> str:
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in fields.items() if v is not None
    )
    return (
        f'<section class="wide confirm"><h2>Confirm</h2><p id="question">{question}</p>'
        f'<form method="post" action="{e(action_url)}"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f'{hidden}<button type="submit" id="confirm">Yes, do it</button> <a href="{e(back)}">No, go back</a>'
        f"</form></section>"
    )


# -- LoRAs, scheduler, images --------------------------------------------------------------------


def loras_section(loras: list[Row], next_url: str | None) -> str:
    rows = [
        [
            f'<a href="/dashboard/loras/{e(lo["id"])}">{e(lo["name"])}</a>',
            badge(lo["status"]),
            e(lo["user_id"]),
            "yes" if lo["is_public"] else "no",
            e(lo.get("base_model")),
            job_link(lo["training_job_id"]) if lo.get("training_job_id") else "—",
            e(lo["error_message"]) if lo.get("error_message") else "",
            when(lo["created_at"]),
        ]
        for lo in loras
    ]
    more = f'<p><a href="{e(next_url)}">next page</a></p>' if next_url else ""
    return (
        f'<section class="wide"><h2>LoRAs</h2>'
        f"{table(['name', 'status', 'owner', 'public', 'base model', 'training job', 'error', 'created'], rows)}"
        f"{more}</section>"
    )


def training_page(lora: Row, job: Row | None, history: list[Row]) -> str:
    p = job["progress"] if job and isinstance(job["progress"], dict) else {}
    facts = [
        ("status", badge(lora["status"])),
        ("owner", e(lora["user_id"])),
        ("base model", e(lora.get("base_model"))),
        ("trigger words", e(", ".join(lora["trigger_words"] or []))),
        ("training images", e(lora["training_images_count"])),
        ("training job", job_link(job["id"], str(job["id"])) + " " + badge(job["status"]) if job else "—"),
        ("step", f"{e(p.get('step'))} / {e(p.get('total'))}"),
        ("loss", e(f"{p['loss']:.4g}" if isinstance(p.get("loss"), int | float) else None)),
        ("s/step", e(p.get("s_per_step"))),
        ("ETA", seconds(p.get("eta_s"))),
        ("stage", stage_text(p, job["progress_percent"] if job else None)),
        ("error", f'<span class="err">{e(lora.get("error_message"))}</span>'),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    losses = [
        (float(h["progress"]["step"]), float(h["progress"]["loss"]))
        for h in history
        if isinstance(h["progress"], dict)
        and h["progress"].get("loss") is not None
        and h["progress"].get("step") is not None
    ]
    checkpoints = [
        [when(h["at"]), e(h["progress"].get("step"))]
        for h in history
        if isinstance(h["progress"], dict) and h["progress"].get("stage") == "checkpointing"
    ]
    preview = lora.get("preview_image_id")
    pic = (
        f'<a href="/dashboard/images/{e(preview)}"><img class="preview" src="/v1/images/{e(preview)}/file" '
        f'alt="preview of {e(lora["name"])}"></a>'
        if preview
        else '<p class="muted">no preview yet</p>'
    )
    return (
        f'<section class="wide"><h2>Training</h2><dl class="facts">{dl}</dl></section>'
        f'<section class="wide" id="loss"><h2>Loss curve</h2>'
        f"{line_chart(losses, x_label='step', y_label='loss', name='loss-chart')}</section>"
        f"<section><h2>Preview</h2>{pic}</section>"
        f"<section><h2>Checkpoints</h2>{table(['at', 'step'], checkpoints, empty='none yet')}</section>"
    )


def scheduler_section(leader: Row | None, tasks: list[Row], failures: list[Row]) -> str:
    who = (
        f"{e(leader['leader'] or '(unnamed session)')} · pid {e(leader['pid'])} · since {when(leader['backend_start'])}"
        if leader
        else '<span class="warn">no scheduler is leading: maintenance is not running</span>'
    )
    rows = [
        [
            e(t["task"]),
            badge(t["status"]),
            when(t["tick"]),
            e(t["ran_by"]),
            when(t["finished_at"]),
            str(t["failures_1d"]),
            f'<span class="err">{e(t["error_message"] or "")}</span>',
        ]
        for t in tasks
    ]
    fails = [
        [
            e(f["task"]),
            when(f["started_at"]),
            e(f["ran_by"]),
            f'<span class="err">{e(f["error_message"])}</span>',
        ]
        for f in failures
    ]
    return (
        f'<section class="wide"><h2>Leader</h2><p id="leader">{who}</p></section>'
        f'<section class="wide"><h2>Tasks (latest run of each)</h2>'
        f"{table(['task', 'status', 'tick', 'ran by', 'finished', 'failures (24 h)', 'error'], rows, numeric=[5])}"
        f'</section><section class="wide"><h2>Recent failures</h2>'
        f"{table(['task', 'at', 'ran by', 'error'], fails)}</section>"
    )


def image_detail(image: Row) -> str:
    facts = [
        ("prompt", e(image["prompt"])),
        ("negative prompt", e(image["negative_prompt"])),
        ("seed", e(image["seed"])),
        ("model", e(image["model_name"])),
        ("provider", e(image["provider"])),
        ("size", f"{e(image['width'])} × {e(image['height'])}"),
        ("job", job_link(image["job_id"]) if image["job_id"] else "—"),
        ("scene", e(image["scene_id"])),
        ("story", e(image.get("story_id"))),
        ("created", when(image["created_at"])),
    ]
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    return (
        f'<section class="wide"><a href="/v1/images/{e(image["id"])}/file"><img class="full" '
        f'src="/v1/images/{e(image["id"])}/file" alt="{e((image["prompt"] or "image")[:200])}"></a>'
        f'<p><a href="/v1/images/{e(image["id"])}/file">open the full-size file</a></p></section>'
        f'<section><h2>Generation</h2><dl class="facts">{dl}</dl></section>'
        f"<section><h2>Quality</h2>{quality_facts(image)}</section>"
        f"<section><h2>Parameters</h2>{pre_json(image['parameters'])}<h2>Timings</h2>{pre_json(image['timings'])}"
        f"</section>"
    )


def quality_facts(image: Row) -> str:
    """The image's quality analysis: score, measures, flags, prompt alignment, re-generation tries."""
    quality = image.get("quality")
    if not quality:
        return "<p>not analysed (made before image quality was measured, or not by generate_image)</p>"
    if quality.get("status") == "unreadable":
        return f"<p>{quality_badge(image)} could not be analysed: {e(quality.get('reason'))}</p>"
    alignment = quality.get("alignment") or {}
    if alignment.get("status") == "ok":
        aligned = (
            f"{alignment['similarity']:.3f} (CLIPScore {alignment['clip_score']:.1f}, "
            f"{e(alignment.get('model'))}{', prompt truncated' if alignment.get('prompt_truncated') else ''})"
        )
    else:
        aligned = f"{e(alignment.get('status', 'skipped'))}: {e(alignment.get('reason', 'not measured'))}"
    facts = [
        ("score", quality_badge(image)),
        ("flags", e(", ".join(quality.get("flags") or []) or "none")),
        ("exposure (mean luminance)", e(quality.get("exposure"))),
        ("contrast (RMS)", e(quality.get("contrast"))),
        ("sharpness (Laplacian variance)", e(quality.get("sharpness"))),
        (
            "clipped shadows / highlights",
            f"{e(quality.get('clipped_dark'))} / {e(quality.get('clipped_bright'))}",
        ),
        ("prompt alignment", aligned),
    ]
    tries = quality.get("regenerations") or []
    if tries:
        facts.append(
            (
                "re-generated",
                ", ".join(
                    f"seed {e(t['seed'])}: {e(t['score'])}{' (kept)' if t.get('kept') else ''}" for t in tries
                ),
            )
        )
    return '<dl class="facts">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"


def message(text: str, kind: str = "note") -> str:
    return f'<p class="{e(kind)}" role="alert">{e(text)}</p>'
