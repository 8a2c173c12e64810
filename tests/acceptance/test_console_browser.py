"""The operations console in a real headless Chromium, as an admin uses it: sign in (a form POST), filter
the job list, open a job, retry a failed one, cancel a running one and watch it end `cancelled`, watch a
training page's loss chart grow, open an image; live updates that survive a dropped stream; no page scrolls
sideways at 360, 900 or 1,400 px (screenshots of each); and an accessibility check (axe-core when
installed, and the project's own checks always)."""

from __future__ import annotations

import base64
import io
import json
import os
from pathlib import Path

import pytest
from psycopg.types.json import Jsonb

from enchant_worker.domain.jobs import NewJob
from enchant_worker.queue import JobQueue, Lease
from tests.acceptance.test_api import api_server, chromium  # noqa: F401 - fixtures
from tests.support.browser import DevTools
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
WIDTHS = (360, 900, 1400)
SCREENSHOTS = REPO / "docs" / "screenshots"  # refreshed when ENCHANT_UPDATE_SCREENSHOTS=1
README_SHOTS = ("overview-360", "overview-900", "overview-1400", "jobs-360", "job-900", "training-1400")
AXE_CANDIDATES = [
    os.environ.get("ENCHANT_AXE_JS", ""),
    str(REPO / ".enchant-test/npm/node_modules/axe-core/axe.min.js"),
    "/usr/share/nodejs/axe-core/axe.min.js",
    "/usr/lib/nodejs/axe-core/axe.min.js",
]


def _go(page: DevTools, url: str) -> None:
    page.call("Page.navigate", url=url)
    wait_for(
        lambda: page.evaluate("document.readyState") == "complete" and page.evaluate("location.href") == url,
        timeout=30,
        every=0.1,
    )


def _click(page: DevTools, selector: str) -> None:
    before = page.evaluate("location.href")
    assert page.evaluate(f"!!document.querySelector({json.dumps(selector)})"), selector
    page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")
    wait_for(
        lambda: (
            page.evaluate("location.href") != before and page.evaluate("document.readyState") == "complete"
        ),
        timeout=30,
        every=0.1,
    )


def _text(page: DevTools) -> str:
    return page.evaluate("document.body.innerText")


def _png(path: Path) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new("RGB", (64, 64))
    for x in range(64):
        for y in range(64):
            image.putpixel((x, y), (x * 4, y * 4, 128))
    out = io.BytesIO()
    image.save(out, format="PNG")
    path.write_bytes(out.getvalue())


@pytest.fixture
def seeded(api_server, cli_env, conn):  # noqa: F811 - the imported fixture
    """A queue with a bit of everything: pending jobs of two types, a running job on a worker, a failed
    job whose error holds HTML, a LoRA in training with its loss so far, and an image with its file."""
    queue = JobQueue(conn)
    pending = queue.enqueue_many([NewJob("noop"), NewJob("noop"), NewJob("export_story", {"story_id": "x"})])
    queue.register_worker(
        "gpu-0",
        host="box",
        pid=7,
        job_types=["noop", "train_lora"],
        device={"kind": "cuda", "name": "H100", "memory_total_mb": 80000, "loaded_models": ["sd15"]},
        concurrency=1,
    )
    failing = queue.enqueue(NewJob("generate_image", {"prompt": "<b>bold</b>"}, max_attempts=1))
    [leased] = queue.lease("gpu-0", ["generate_image"])
    queue.fail(
        Lease(leased.id, leased.lease_token), "CUDA <oom> at step 3\nTraceback line 2", attempt=1, retry=False
    )
    lora = conn.execute(
        "INSERT INTO lora_models (name, model_file_url) VALUES ('inkwash', '') RETURNING id"
    ).fetchone()["id"]
    training = queue.enqueue(
        NewJob("train_lora", {"base_model": "sd15"}, entity_type="lora_model", entity_id=lora, priority=1)
    )
    [train] = queue.lease("gpu-0", ["train_lora"])
    train_lease = Lease(train.id, train.lease_token)
    for step in (1, 2, 3):
        queue.extend(
            [train_lease],
            {
                training: {
                    "percent": step,
                    "info": {
                        "stage": "training",
                        "step": step,
                        "total": 100,
                        "loss": 0.5 / step,
                        "s_per_step": 0.2,
                        "eta_s": 20,
                    },
                }
            },
        )
    queue.worker_heartbeat("gpu-0", [training])
    storage = Path(cli_env["ENCHANT_HOME"]) / "storage"
    _png(storage / "images" / "fox.png")
    image = conn.execute(
        "INSERT INTO images (file_path, prompt, seed, parameters, width, height, job_id) VALUES "
        "('images/fox.png', 'a fox in the snow', 42, %s, 64, 64, %s) RETURNING id",
        [Jsonb({"steps": 25, "cfg_scale": 7}), failing],
    ).fetchone()["id"]
    story = _analysed_story(conn)
    return {
        "queue": queue,
        "pending": pending,
        "failed": failing,
        "lora": lora,
        "training": training,
        "train_lease": train_lease,
        "image": image,
        "story": story,
    }


def _analysed_story(conn):
    """The sample book as a story (never extracted: builtin splits it in memory), analysed and stored."""
    from enchant_worker import story_analysis_store as store
    from enchant_worker.text.story_analysis import analyze_story

    text = (REPO / "samples" / "the-lamp-at-marrow-point.md").read_text()
    story = conn.execute(
        "INSERT INTO stories (title) VALUES ('The Lamp at Marrow Point') RETURNING id"
    ).fetchone()["id"]
    for number, chapter in enumerate(text.split("\n## ")[1:], start=1):
        conn.execute(
            "INSERT INTO chapters (story_id, chapter_number, content) VALUES (%s, %s, %s)",
            (story, number, chapter.split("\n", 1)[1]),
        )
    _, story_input = store.load_story(conn, story)
    store.save(conn, story, analyze_story(story_input), story_input.content_hash("builtin"))
    return story


def _sign_in(page: DevTools, base: str, key: str) -> None:
    page.call("Page.enable")
    _go(page, f"{base}/dashboard?refresh=1")
    page.evaluate(
        f"document.querySelector('input[name=key]').value = {json.dumps(key)}; "
        "document.querySelector('form').submit()"
    )
    wait_for(lambda: page.evaluate("!!document.getElementById('total-pending')"), timeout=30, every=0.1)
    assert page.evaluate("document.cookie") == ""  # HttpOnly


def test_an_admin_works_the_console(api_server, chromium, seeded, conn):  # noqa: F811
    base, key, _ = api_server
    page, queue = chromium, seeded["queue"]
    _sign_in(page, base, key)
    assert "no live worker serves this type" in _text(page)  # export_story: nobody serves it

    # Filter the job list to the failed jobs and open the one there.
    _go(page, f"{base}/dashboard/jobs")
    page.evaluate("document.querySelector('select[name=status]').value = 'failed'")
    _click(page, "form.filters button[type=submit]")
    assert "status=failed" in page.evaluate("location.search")
    rows = page.evaluate("[...document.querySelectorAll('table.cards tbody tr')].map(r => r.innerText)")
    assert len(rows) == 1 and str(seeded["failed"]) in rows[0]
    _click(page, f"a[href='/dashboard/jobs/{seeded['failed']}']")
    body = _text(page)
    assert "CUDA <oom> at step 3\nTraceback line 2" in body  # the error in full, as text (escaped)
    assert page.evaluate("document.querySelectorAll('oom, b').length") == 0  # no HTML from the job ran

    # Retry it: a confirmation page, then back on the job's page with who did it.
    _click(page, "a.button[href$='action=retry']")
    assert "Retry job" in _text(page)
    _click(page, "#confirm")
    assert "retry done by dashboard" in _text(page)
    assert queue.get(seeded["failed"]).status == "pending"

    # Cancel the running training job; the page shows it end `cancelled` live, once its worker stops.
    _go(page, f"{base}/dashboard/jobs/{seeded['training']}?refresh=1")
    _click(page, "a.button[href$='action=cancel']")
    _click(page, "#confirm")
    assert "cancel requested by dashboard" in _text(page)
    queue.finish_cancelled(seeded["train_lease"])
    wait_for(
        lambda: page.evaluate("document.querySelector('#job-summary .badge').textContent") == "cancelled",
        timeout=30,
        every=0.2,
    )
    assert page.evaluate("window.__console.updates") >= 1
    actions = conn.execute("SELECT action, key_name FROM job_actions ORDER BY id").fetchall()
    assert [(a["action"], a["key_name"]) for a in actions] == [
        ("retry", "dashboard"),
        ("cancel", "dashboard"),
    ]

    # Open an image from the gallery: full size, with its parameters.
    _go(page, f"{base}/dashboard/images")
    _click(page, f"a[href='/dashboard/images/{seeded['image']}']")
    wait_for(
        lambda: page.evaluate("document.querySelector('img.full').naturalWidth") == 64, timeout=30, every=0.1
    )
    assert "a fox in the snow" in _text(page) and "cfg_scale" in _text(page)


def test_the_training_page_grows_its_loss_chart_live(api_server, chromium, seeded):  # noqa: F811
    base, key, _ = api_server
    page, queue = chromium, seeded["queue"]
    _sign_in(page, base, key)
    _go(page, f"{base}/dashboard/loras/{seeded['lora']}?refresh=1")
    points = "document.getElementById('loss-chart').dataset.points"
    assert page.evaluate(points) == "3" and "step 3/100" in _text(page)
    wait_for(lambda: page.evaluate("window.__console && window.__console.opens") >= 1, timeout=30, every=0.1)
    for step in (4, 5):
        queue.extend(
            [seeded["train_lease"]],
            {
                seeded["training"]: {
                    "percent": step,
                    "info": {
                        "stage": "training",
                        "step": step,
                        "total": 100,
                        "loss": 0.5 / step,
                        "s_per_step": 0.2,
                        "eta_s": 19,
                    },
                }
            },
        )
    wait_for(lambda: page.evaluate(points) == "5", timeout=30, every=0.2)
    assert "step 5/100" in _text(page)


def test_live_updates_survive_a_dropped_stream(api_server, chromium, seeded):  # noqa: F811
    base, key, _ = api_server
    page, queue = chromium, seeded["queue"]
    _sign_in(page, base, key)
    _go(page, f"{base}/dashboard?refresh=1&stream_s=2")  # the server ends each stream after 2 s
    wait_for(lambda: page.evaluate("window.__console.opens") >= 2, timeout=30, every=0.2)  # reconnected
    before = int(page.evaluate("document.getElementById('total-pending').textContent"))
    queue.enqueue(NewJob("noop"))
    wait_for(
        lambda: page.evaluate("document.getElementById('total-pending').textContent") == str(before + 1),
        timeout=30,
        every=0.2,
    )


def _overflow(page: DevTools) -> list[str]:
    """Elements whose right edge passes the viewport, and whether the page scrolls sideways."""
    return page.evaluate("""(() => {
        const w = document.documentElement.clientWidth, out = [];
        if (document.documentElement.scrollWidth > w) out.push('page scrollWidth ' + document.documentElement.scrollWidth + ' > ' + w);
        for (const el of document.querySelectorAll('body *')) {
            const r = el.getBoundingClientRect();
            if (r.width && r.right > w + 1 && getComputedStyle(el).position !== 'absolute')
                out.push(el.tagName + '.' + el.className + ' right ' + Math.round(r.right));
        }
        return out.slice(0, 10);
    })()""")


def _axe(page: DevTools) -> list[str] | None:
    """Serious or critical axe-core violations on the page; None when axe-core is not installed."""
    source = next((Path(p) for p in AXE_CANDIDATES if p and Path(p).is_file()), None)
    if source is None:
        return None
    page.evaluate(source.read_text())
    page.call(
        "Runtime.evaluate",
        expression="window.__axe = null; axe.run(document, {resultTypes: ['violations']})"
        ".then(r => { window.__axe = r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')); })",
    )
    wait_for(lambda: page.evaluate("window.__axe !== null"), timeout=60, every=0.2)
    return page.evaluate("window.__axe")


OWN_CHECKS = """(() => {
    const out = [];
    if (!document.documentElement.lang) out.push('no lang on <html>');
    if (document.querySelectorAll('h1').length !== 1) out.push('not exactly one h1');
    for (const img of document.querySelectorAll('img')) if (!img.hasAttribute('alt')) out.push('img without alt');
    for (const el of document.querySelectorAll('input:not([type=hidden]), select'))
        if (!el.closest('label') && !el.getAttribute('aria-label')) out.push('unlabelled ' + el.name);
    for (const el of document.querySelectorAll('a, button'))
        if (!el.textContent.trim() && !el.getAttribute('aria-label') && !el.querySelector('img[alt]')) out.push('unnamed ' + el.tagName);
    for (const svg of document.querySelectorAll('svg')) if (!svg.getAttribute('aria-label')) out.push('svg without label');
    return out;
})()"""


def test_no_page_scrolls_sideways_and_none_has_serious_accessibility_problems(
    api_server,  # noqa: F811
    chromium,  # noqa: F811
    seeded,
    tmp_path,
):
    base, key, _ = api_server
    page = chromium
    _sign_in(page, base, key)
    pages = {
        "overview": "/dashboard",
        "jobs": "/dashboard/jobs",
        "job": f"/dashboard/jobs/{seeded['failed']}",
        "training": f"/dashboard/loras/{seeded['lora']}",
        "workers": "/dashboard/workers",
        "scheduler": "/dashboard/scheduler",
        "gallery": "/dashboard/images",
        "image": f"/dashboard/images/{seeded['image']}",
        "stories": "/dashboard/stories",
        "story": f"/dashboard/stories/{seeded['story']}",
    }
    problems, axe_ran = {}, False
    for width in WIDTHS:
        page.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=900,
            deviceScaleFactor=1,
            mobile=width < 600,
        )
        for name, path in pages.items():
            if width == 900 and name not in ("overview", "jobs", "job", "training"):
                continue  # the middle width for the pages with the widest tables
            _go(page, f"{base}{path}")
            if overflow := _overflow(page):
                problems[f"{name}@{width}"] = overflow
            shot = page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
            (tmp_path / f"{name}-{width}.png").write_bytes(base64.b64decode(shot))
            if width != 900 and (own := page.evaluate(OWN_CHECKS)):
                problems[f"{name}@{width} a11y"] = own
            if width == 1400:
                found = _axe(page)
                axe_ran = axe_ran or found is not None
                if found:
                    problems[f"{name}@{width} axe"] = found
    if os.environ.get("ENCHANT_UPDATE_SCREENSHOTS") == "1":  # the README's, in 128 colours to stay small
        from PIL import Image

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for shot in README_SHOTS:
            image = Image.open(tmp_path / f"{shot}.png").convert("RGB").quantize(colors=128)
            image.save(SCREENSHOTS / f"{shot}.png", optimize=True)
    assert problems == {}
    print(f"axe-core {'ran' if axe_ran else 'not installed (set ENCHANT_AXE_JS)'}; own checks ran")
