"""Image quality in the API (v1 and v2 image shapes, the `min_quality` filter) and in the console
(gallery badges and filter, the image page's quality section); bad values answer with the field."""

from __future__ import annotations

import uuid

import pytest
from psycopg.types.json import Jsonb

ALIGNMENT_SKIPPED = {
    "status": "skipped",
    "reason": "no CLIP model (text and vision) for 'tiny-sd': add a [models.NAME] entry with kind = \"clip\"",
}


def add_image(conn, user_id, score: float | None, prompt: str = "a fox", **quality) -> uuid.UUID:
    body = None
    if score is not None or quality:
        body = {
            "version": 1,
            "status": "ok",
            "score": score,
            "exposure": 0.5,
            "contrast": 0.2,
            "sharpness": 0.01,
            "clipped_dark": 0.0,
            "clipped_bright": 0.0,
            "flags": [],
            "alignment": ALIGNMENT_SKIPPED,
            **quality,
        }
    return conn.execute(
        "INSERT INTO images (user_id, file_path, prompt, quality, quality_score) "
        "VALUES (%s, 'images/x.png', %s, %s, %s) RETURNING id",
        (user_id, prompt, Jsonb(body) if body else None, score),
    ).fetchone()["id"]


@pytest.fixture
def scored(conn, alice):
    return {
        "high": add_image(conn, alice.user_id, 0.9),
        "middle": add_image(conn, alice.user_id, 0.5),
        "low": add_image(conn, alice.user_id, 0.1, flags=["blurry"]),
        "unknown": add_image(conn, alice.user_id, None),
    }


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_images_carry_their_quality_and_filter_by_min_quality(client, alice, scored, version):
    def listed(**params) -> list[str]:
        r = client.get(f"/{version}/images", params=params, headers=alice.headers)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    assert set(listed()) == {str(v) for v in scored.values()}
    assert set(listed(min_quality=0.5)) == {str(scored["high"]), str(scored["middle"])}  # inclusive, no NULLs
    assert listed(min_quality=0.95) == []
    assert set(listed(min_quality=0)) == {str(scored[k]) for k in ("high", "middle", "low")}
    one = client.get(f"/{version}/images/{scored['low']}", headers=alice.headers).json()
    assert one["quality_score"] == pytest.approx(0.1) and one["quality"]["flags"] == ["blurry"]
    assert one["quality"]["alignment"]["status"] == "skipped"
    unknown = client.get(f"/{version}/images/{scored['unknown']}", headers=alice.headers).json()
    assert unknown["quality_score"] is None and unknown["quality"] is None


def test_min_quality_pages_with_its_cursor(client, alice, conn):
    for _ in range(3):
        add_image(conn, alice.user_id, 0.8)
    add_image(conn, alice.user_id, 0.2)
    first = client.get("/v1/images", params={"min_quality": 0.7, "limit": 2}, headers=alice.headers).json()
    second = client.get(
        "/v1/images",
        params={"min_quality": 0.7, "limit": 2, "cursor": first["next_cursor"]},
        headers=alice.headers,
    ).json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1 and second["next_cursor"] is None
    # the cursor belongs to its filters: reused without min_quality it is refused
    r = client.get("/v1/images", params={"limit": 2, "cursor": first["next_cursor"]}, headers=alice.headers)
    assert r.status_code == 400


@pytest.mark.parametrize("value", ["1.5", "-0.1", "abc", "nan", "inf"])
def test_a_bad_min_quality_is_a_422_naming_the_field(client, alice, value):
    r = client.get("/v1/images", params={"min_quality": value}, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["query", "min_quality"]
    assert detail["msg"]  # pydantic's words: "less than or equal to 1", "a valid number", "finite number"


@pytest.mark.parametrize(
    ("metadata", "field", "words"),
    [
        ({"regenerate_below": 1.5}, "regenerate_below", "must be from 0.0 to 1.0, not 1.5"),
        ({"regenerate_below": -0.2}, "regenerate_below", "must be from 0.0 to 1.0"),
        ({"regenerate_below": True}, "regenerate_below", "must be a number from 0.0 to 1.0"),
        (
            {"regenerate_below": 0.5, "max_regenerations": 0},
            "max_regenerations",
            "must be from 1 to 3, not 0",
        ),
        (
            {"regenerate_below": 0.5, "max_regenerations": 10},
            "max_regenerations",
            "must be from 1 to 3, not 10",
        ),
        (
            {"regenerate_below": 0.5, "max_regenerations": 1.5},
            "max_regenerations",
            "must be an integer from 1 to 3",
        ),
        ({"max_regenerations": 2}, "max_regenerations", "applies only with regenerate_below"),
    ],
)
def test_bad_regeneration_settings_are_a_422_with_what_to_send(client, alice, conn, metadata, field, words):
    body = {"job_type": "generate_image", "metadata": {"prompt": "a castle", **metadata}}
    r = client.post("/v1/jobs", json=body, headers=alice.headers)
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"][-1] == field and words in detail["msg"], detail
    assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0  # nothing enqueued


def test_good_regeneration_settings_are_accepted(client, alice):
    body = {
        "job_type": "generate_image",
        "metadata": {"prompt": "a castle", "regenerate_below": 0.4, "max_regenerations": 3},
    }
    r = client.post("/v2/jobs", json=body, headers=alice.headers)
    assert r.status_code in (200, 201, 202), r.text
    assert r.json()["metadata"]["regenerate_below"] == 0.4


# -- the console -------------------------------------------------------------------------------------


@pytest.fixture
def console(client, admin):
    r = client.post("/dashboard", data={"key": admin.key}, follow_redirects=False)
    assert r.status_code == 303
    return client


def test_gallery_shows_scores_and_filters_by_min_quality(console, scored):
    page = console.get("/dashboard/images").text
    assert "q 0.90" in page and "q 0.10" in page and "q ?" in page and 'name="min_quality"' in page
    filtered = console.get("/dashboard/images", params={"min_quality": "0.5"}).text
    assert (
        f"/dashboard/images/{scored['high']}" in filtered
        and f"/dashboard/images/{scored['middle']}" in filtered
    )
    assert f"/dashboard/images/{scored['low']}" not in filtered
    assert f"/dashboard/images/{scored['unknown']}" not in filtered
    assert 'value="0.5"' in filtered  # the form keeps the filter


@pytest.mark.parametrize("value", ["2", "abc", "nan"])
def test_gallery_refuses_a_bad_min_quality_saying_what_it_takes(console, value):
    r = console.get("/dashboard/images", params={"min_quality": value})
    assert r.status_code == 400 and "min_quality: a quality score from 0 to 1" in r.text


def test_image_page_shows_the_quality_analysis(console, conn, scored):
    page = console.get(f"/dashboard/images/{scored['low']}").text
    assert "<h2>Quality</h2>" in page and "blurry" in page and "q 0.10" in page
    assert "Laplacian variance" in page and "kind = &quot;clip&quot;" in page  # why alignment was skipped
    tried = add_image(
        conn,
        None,
        0.6,
        alignment={
            "status": "ok",
            "model": "tiny-clip",
            "similarity": 0.25,
            "clip_score": 25.0,
            "prompt_truncated": False,
        },
        regenerations=[
            {"seed": 1, "score": 0.2, "flags": ["blurry"], "kept": False},
            {"seed": 1000004, "score": 0.6, "flags": [], "kept": True},
        ],
    )
    page = console.get(f"/dashboard/images/{tried}").text
    assert "CLIPScore 25.0" in page and "seed 1000004: 0.6 (kept)" in page and "seed 1: 0.2" in page
    unreadable = add_image(conn, None, None, status="unreadable", reason="the image file x.png is missing")
    assert (
        "could not be analysed: the image file x.png is missing"
        in console.get(f"/dashboard/images/{unreadable}").text
    )
    assert "not analysed" in console.get(f"/dashboard/images/{scored['unknown']}").text
