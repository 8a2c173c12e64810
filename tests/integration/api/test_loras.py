"""LoRAs: training upload (validated, stored, queued), list, get, download counted, publish."""

from __future__ import annotations

import uuid

from enchant_worker.queue import JobQueue


def _form(**extra):
    return {"name": "Ink wash", "trigger_words": "inkwash, brush", "epochs": "2", "resolution": "64", **extra}


def _files(png, n=5, **overrides):
    files = [("images", (f"im{i}.png", png((32 + i, 32)), "image/png")) for i in range(n)]
    for index, value in overrides.items():
        files[int(index)] = ("images", value)
    return files


def test_upload_starts_training(client, alice, png, settings, conn):
    r = client.post("/v2/loras", data=_form(), files=_files(png), headers=alice.headers)
    assert r.status_code == 202, r.text
    body = r.json()
    lora = body["lora"]
    # its job waits: the LoRA says so, names the job and the model, and its file URL is already the one it keeps
    assert lora["status"] == "queued" and lora["training_images_count"] == 5
    assert lora["training_job_id"] == body["job_id"] and lora["base_model"] == "tiny-sd"
    assert lora["model_file_url"] == f"/v2/loras/{lora['id']}/download" and lora["preview_url"] is None
    assert lora["trigger_words"] == ["inkwash", "brush"] and lora["user_id"] == str(alice.user_id)
    job = JobQueue(conn).get(body["job_id"])
    assert job.job_type == "train_lora" and job.metadata["lora_model_id"] == lora["id"]
    assert job.priority > 5  # below generation's default, so waiting illustrations preempt it
    assert (
        job.metadata["epochs"] == 2
        and job.metadata["resolution"] == 64
        and job.metadata["base_model"] == "tiny-sd"
    )
    [upload_id] = job.metadata["training_images"]  # the files became an upload of alice's
    upload = client.get(f"/v2/uploads/{upload_id}", headers=alice.headers).json()
    stored = sorted(p.name for p in (settings.storage / upload["folder"]).iterdir())
    assert len(stored) == upload["file_count"] == 5 and upload["folder"].startswith(
        f"uploads/{alice.user_id}/"
    )
    assert client.get(f"/v2/loras/{lora['id']}", headers=alice.headers).json()["id"] == lora["id"]
    assert client.get(f"/v2/jobs/{body['job_id']}", headers=alice.headers).status_code == 200


def test_unset_knobs_take_the_defaults_the_cli_gets(client, alice, png, conn, settings):
    """The resolution comes from the base model (tiny-sd: 64 px), the rest from the job spec, as for `train`."""
    from types import SimpleNamespace

    from enchant_worker.cli.training import _request

    form = {"name": "Plain", "trigger_words": "plain"}
    r = client.post("/v2/loras", data=form, files=_files(png), headers=alice.headers)
    assert r.status_code == 202, r.text
    metadata = JobQueue(conn).get(r.json()["job_id"]).metadata
    options = dict.fromkeys(
        (
            "base_model",
            "steps",
            "epochs",
            "rank",
            "alpha",
            "learning_rate",
            "batch_size",
            "resolution",
            "seed",
        )
    )
    cli = _request(SimpleNamespace(name="Plain", description="", trigger=["plain"], **options), settings)
    assert (
        metadata["resolution"] == cli["resolution"] == 64
        and metadata["base_model"] == cli["base_model"] == "tiny-sd"
    )
    shared = set(metadata) & set(cli) - {"training_images", "user_id", "lora_model_id"}
    assert {k: metadata[k] for k in shared} == {k: cli[k] for k in shared}
    assert "epochs" not in metadata and "rank" not in metadata  # the spec's defaults, one home


def test_not_an_image_is_415_naming_the_file(client, alice, png, settings):
    files = _files(png, **{"2": ("notes.png", b"this is text, not pixels", "image/png")})
    r = client.post("/v2/loras", data=_form(), files=files, headers=alice.headers)
    assert r.status_code == 415 and "images[2] (notes.png)" in r.json()["detail"]
    assert not (settings.storage / "training").exists() or not any((settings.storage / "training").iterdir())


def test_gif_is_refused(client, alice, png):
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (32, 32)).save(out, format="GIF")
    r = client.post(
        "/v2/loras",
        data=_form(),
        files=_files(png, **{"0": ("a.gif", out.getvalue(), "image/gif")}),
        headers=alice.headers,
    )
    assert r.status_code == 415 and "GIF" in r.json()["detail"]


def test_oversized_file_is_413(client, alice, png, limits):
    big = png((600, 600))  # PNG of noise-free pixels is small: pad it past the per-file limit
    big += b"\0" * (limits.upload_file_bytes + 1 - len(big))
    r = client.post(
        "/v2/loras",
        data=_form(),
        files=_files(png, **{"1": ("big.png", big, "image/png")}),
        headers=alice.headers,
    )
    assert r.status_code == 413 and "images[1]" in r.json()["detail"]


def test_oversized_request_is_413_before_parsing(client, alice, png, limits):
    files = [("images", (f"{i}.png", b"x" * (limits.upload_total_bytes // 4), "image/png")) for i in range(5)]
    r = client.post("/v2/loras", data=_form(), files=files, headers=alice.headers)
    assert r.status_code == 413 and "limit" in r.json()["detail"]


def test_bad_fields_are_422_naming_them(client, alice, png):
    cases = [
        ({"name": ""}, "name"),
        ({"epochs": "0"}, "epochs"),
        ({"resolution": "63"}, "resolution"),
        ({"learning_rate": "1"}, "learning_rate"),
        ({"trigger_words": ",".join(["w"] * 11)}, "trigger_words"),
    ]
    for extra, field in cases:
        r = client.post("/v2/loras", data=_form(**extra), files=_files(png), headers=alice.headers)
        assert r.status_code == 422 and field in r.json()["detail"][0]["loc"], (extra, r.text)
    r = client.post("/v2/loras", data=_form(), files=_files(png, n=2), headers=alice.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "images"]
    r = client.post("/v2/loras", data=_form(), headers=alice.headers)
    assert r.status_code == 422 and "images" in r.json()["detail"][0]["loc"]
    r = client.post(
        "/v2/loras",
        data=_form(),
        files=_files(png, **{"0": ("tiny.png", png((8, 8)), "image/png")}),
        headers=alice.headers,
    )
    assert r.status_code == 422 and "at least 16" in r.json()["detail"][0]["msg"]


def test_download_publish_and_visibility(client, alice, bob, store, settings):
    (settings.storage / "loras").mkdir(parents=True)
    (settings.storage / "loras" / "ink.safetensors").write_bytes(b"lora-weights")
    lora = store.conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url, status) VALUES "
        "(%s, 'ink', 'loras/ink.safetensors', 'ready') RETURNING id",
        [alice.user_id],
    ).fetchone()["id"]
    training = store.conn.execute(
        "INSERT INTO lora_models (user_id, name, model_file_url) VALUES "
        "(%s, 'wip', 'loras/wip.safetensors') RETURNING id",
        [alice.user_id],
    ).fetchone()["id"]
    assert client.get(f"/v2/loras/{lora}", headers=bob.headers).status_code == 403
    assert client.get(f"/v2/loras/{lora}/download", headers=bob.headers).status_code == 403
    r = client.get(f"/v2/loras/{lora}/download", headers=alice.headers)
    assert r.status_code == 200 and r.content == b"lora-weights"
    assert client.get(f"/v2/loras/{training}/download", headers=alice.headers).status_code == 409
    assert client.post(f"/v2/loras/{training}/publish", headers=alice.headers).status_code == 409
    assert client.post(f"/v2/loras/{lora}/publish", headers=bob.headers).status_code == 403
    r = client.post(f"/v2/loras/{lora}/publish", headers=alice.headers)
    assert r.status_code == 200 and r.json()["is_public"] is True
    # Public: bob lists, reads and downloads it (counted), but may not unpublish it.
    assert [
        x["id"]
        for x in client.get("/v2/loras", params={"scope": "public"}, headers=bob.headers).json()["items"]
    ] == [str(lora)]
    assert client.get(f"/v2/loras/{lora}/download", headers=bob.headers).status_code == 200
    assert client.get(f"/v2/loras/{lora}", headers=bob.headers).json()["download_count"] == 2
    assert client.post(f"/v2/loras/{lora}/unpublish", headers=bob.headers).status_code == 403
    assert client.get("/v2/loras", params={"scope": "mine"}, headers=bob.headers).json()["items"] == []
    assert client.post(f"/v2/loras/{lora}/unpublish", headers=alice.headers).json()["is_public"] is False
    assert client.get(f"/v2/loras/{uuid.uuid4()}", headers=alice.headers).status_code == 404
    # A ready LoRA whose file is gone: 404 naming it, not a 500.
    (settings.storage / "loras" / "ink.safetensors").unlink()
    assert client.get(f"/v2/loras/{lora}/download", headers=alice.headers).status_code == 404
