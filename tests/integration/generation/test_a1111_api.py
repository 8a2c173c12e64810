"""AUTOMATIC1111's web API, judged by the `webuiapi` client (PyPI) against a real HTTP server, with a
worker running the jobs: txt2img with and without a LoRA tag, options, progress, interrupt, png-info,
resubmitting a PNG's parameters, and bad input in A1111's error shape (worker and data intact)."""

from __future__ import annotations

import base64
import io
import shutil
import threading
import time
import uuid

import numpy as np
import pytest
import requests
import webuiapi
from PIL import Image

from enchant_worker.api import create_app
from enchant_worker.api.auth import create_key
from enchant_worker.api.store import Store
from enchant_worker.handlers import default_registry
from tests.support.http_server import ServerThread
from tests.support.workers import WorkerThreads

SMALL = {"width": 64, "height": 64, "steps": 2, "cfg_scale": 7.0, "sampler_name": "Euler", "seed": 1234}


@pytest.fixture
def service(db, gen_settings, lora_sources):
    """The API on 127.0.0.1 and a worker in a thread, on this test's database; a LoRA file 'ink'."""
    loras = gen_settings.storage / "loras"
    loras.mkdir(parents=True, exist_ok=True)
    shutil.copy(lora_sources["ink"], loras / "ink.safetensors")
    # requests wake on the job's end through LISTEN (the OpenAI tests' app polls)
    app = create_app(
        gen_settings,
        database_url=gen_settings.database_url,
        session_url=db.session_url,
        job_types=default_registry(plugins=False),
    )
    workers = WorkerThreads(db, gen_settings)
    workers.start(types=["generate_image"], poll_interval_s=0.05)
    with ServerThread(app) as server:
        yield server
    workers.stop_all(15)


@pytest.fixture
def keys(db):
    with db.connection() as conn:
        store = Store(conn)
        out = {}
        for name in ("alice", "bob"):
            user_id = store.ensure_user(f"{name}-{uuid.uuid4().hex[:6]}@example.org")
            out[name] = (create_key(store, name=name, role="user", user_id=user_id)[0], user_id)
        return out


def client(server, key, *, basic: bool = False) -> webuiapi.WebUIApi:
    if basic:
        return webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1", username="anyone", password=key)
    api = webuiapi.WebUIApi(baseurl=f"{server.url}/sdapi/v1")
    api.session.headers["Authorization"] = f"Bearer {key}"
    return api


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_txt2img_with_and_without_a_lora_tag(service, keys):
    api = client(service, keys["alice"][0], basic=True)  # A1111's --api-auth style
    plain = api.txt2img(prompt="a lighthouse at dusk", batch_size=2, **SMALL)
    assert len(plain.images) == 2 and plain.images[0].size == (64, 64)
    assert plain.info["all_seeds"] == [1234, 1235]
    assert plain.info["sd_model_name"] == "tiny-sd" and plain.info["sd_model_hash"]
    text = plain.info["infotexts"][0]
    assert "Model hash: " + plain.info["sd_model_hash"] in text and "Model: tiny-sd" in text

    tagged = api.txt2img(prompt="a lighthouse at dusk <lora:ink:1>", **SMALL)
    assert (pixels(tagged.image) != pixels(plain.images[0])).any(), "the LoRA changed nothing"
    info = tagged.info["infotexts"][0]
    assert "<lora:ink:1>" in info and 'Lora hashes: "ink: ' in info
    # the tag was applied and taken out of the text: the prompt line holds it once, at the end
    assert info.split("\n")[0] == "a lighthouse at dusk <lora:ink:1>"


def test_png_info_then_txt2img_reproduces_the_pixels(service, keys):
    api = client(service, keys["alice"][0])
    first = api.txt2img(prompt="a red boat <lora:ink:0.8>", negative_prompt="blurry", **SMALL)
    read = api.png_info(first.image)
    p = read.info if isinstance(read.info, dict) else read.json["parameters"]
    p = read.json["parameters"]
    assert p["Prompt"] == "a red boat <lora:ink:0.8>" and p["Negative prompt"] == "blurry"
    again = api.txt2img(
        prompt=p["Prompt"],
        negative_prompt=p["Negative prompt"],
        seed=int(p["Seed"]),
        steps=int(p["Steps"]),
        cfg_scale=float(p["CFG scale"]),
        sampler_name=p["Sampler"],
        width=int(p["Size-1"]),
        height=int(p["Size-2"]),
        override_settings={"sd_model_checkpoint": p["Model"]},
    )
    assert (pixels(again.image) == pixels(first.image)).all()
    assert again.info["infotexts"][0] == first.info["infotexts"][0]


def test_models_loras_samplers_schedulers_and_options(service, keys):
    api = client(service, keys["alice"][0])
    models = api.get_sd_models()
    assert [m["model_name"] for m in models] == ["tiny-sd"] or "tiny-sd" in [m["model_name"] for m in models]
    tiny = next(m for m in models if m["model_name"] == "tiny-sd")
    assert (
        tiny["title"] == f"tiny-sd [{tiny['hash']}]" and len(tiny["hash"]) == 10 and len(tiny["sha256"]) == 64
    )
    assert "ink" in [lo["name"] for lo in api.get_loras()]
    assert "Euler a" in api.util_get_sampler_names()
    assert {"automatic", "karras"} <= set(api.util_get_scheduler_names())
    api.util_set_model("tiny-sd")
    assert api.util_get_current_model() == tiny["title"]
    # another user's options are their own
    assert client(service, keys["bob"][0]).get_options()["sd_model_checkpoint"] == tiny["title"]
    bad = requests.post(
        f"{service.url}/sdapi/v1/options",
        json={"sd_model_checkpoint": "nope"},
        headers={"Authorization": f"Bearer {keys['alice'][0]}"},
    )
    assert bad.status_code == 422 and "unknown checkpoint 'nope'" in bad.json()["detail"]


def test_progress_while_a_job_runs_then_interrupt(service, keys):
    api = client(service, keys["alice"][0])
    api.txt2img(prompt="warm up", **SMALL)  # the pipeline is resident from here on
    assert api.get_progress()["state"]["job_count"] == 0
    box = {}
    runner = threading.Thread(
        target=lambda: box.setdefault(
            "r",
            api.txt2img(
                prompt="a long walk", **{**SMALL, "steps": 150, "width": 128, "height": 128, "batch_size": 2}
            ),
        )
    )
    runner.start()
    seen = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and runner.is_alive():
        p = api.get_progress()
        if p["state"]["sampling_step"] > 0:
            seen = p
            break
        time.sleep(0.02)
    assert seen is not None, "no progress was reported"
    assert (
        seen["state"]["sampling_steps"] == 150
        and 0 < seen["progress"] < 1
        and seen["state"]["job_count"] == 1
    )
    api.interrupt()
    runner.join(20)
    result = box["r"]
    assert result.images == [] and result.info["interrupted"] is True
    # the worker is still serving
    assert len(api.txt2img(prompt="after the interrupt", **SMALL).images) == 1


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"steps": 0}, "steps", "from 1 to 150"),
        ({"width": 65}, "width", "multiple of 8"),
        ({"cfg_scale": 99}, "cfg_scale", "from 0.0 to 30.0"),
        ({"sampler_name": "Heun++"}, "sampler_name", "unknown sampler 'Heun++'"),
        ({"scheduler": "exponential"}, "scheduler", "unknown scheduler"),
        (
            {"override_settings": {"sd_model_checkpoint": "sdxl-nope"}},
            "override_settings.sd_model_checkpoint",
            "unknown checkpoint",
        ),
        ({"batch_size": 1000, "n_iter": 1000}, "batch_size", "at most 8"),
        ({"batch_size": 3, "n_iter": 2}, "count", "free tier allows at most 4 images per job, not 6"),
        ({"prompt": "a cat <lora:ink:heavy>"}, "prompt", "malformed tag"),
        ({"prompt": "a cat <lora:ink:1"}, "prompt", "closed with '>'"),
        ({"prompt": "a cat <lora:nowhere:1>"}, "loras[0].name", "unknown LoRA 'nowhere'"),
        ({"steps": "many"}, "steps", "valid integer"),
    ],
)
def test_bad_input_is_a_422_in_a1111_shape(service, keys, db, change, field, words):
    key = keys["alice"][0]
    r = requests.post(
        f"{service.url}/sdapi/v1/txt2img",
        json={"prompt": "a cat", **SMALL, **change},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert r.status_code == 422, r.text
    body = r.json()
    assert set(body) >= {"error", "detail", "body", "errors"} and words in body["detail"], body
    assert body.get("field") == field
    with db.connection() as conn:
        assert conn.execute("SELECT count(*) AS n FROM processing_jobs").fetchone()["n"] == 0
    assert len(client(service, key).txt2img(prompt="still fine", **SMALL).images) == 1


def test_auth_and_another_users_private_lora(service, keys, db, lora_sources, gen_settings):
    r = requests.post(f"{service.url}/sdapi/v1/txt2img", json={"prompt": "x"})
    assert (
        r.status_code == 401
        and r.json()["error"] == "Unauthorized"
        and "Basic" in r.headers["WWW-Authenticate"]
    )
    r = requests.get(f"{service.url}/sdapi/v1/sd-models", auth=("u", "ew_wrong"))
    assert r.status_code == 401 and "unknown or revoked" in r.json()["detail"]
    alice_key, alice_id = keys["alice"]
    shutil.copy(lora_sources["water"], gen_settings.storage / "loras" / "alice-water.safetensors")
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO lora_models (user_id, name, model_file_url, status) "
            "VALUES (%s, 'secret-style', 'loras/alice-water.safetensors', 'ready')",
            (alice_id,),
        )
    bob = requests.post(
        f"{service.url}/sdapi/v1/txt2img",
        json={"prompt": "x <lora:secret-style:1>", **SMALL},
        headers={"Authorization": f"Bearer {keys['bob'][0]}"},
    )
    # by name, another user's private LoRA is as unknown as one that does not exist (nothing leaks)
    assert bob.status_code == 422 and "unknown LoRA 'secret-style'" in bob.json()["detail"]
    assert "secret-style" not in [lo["name"] for lo in client(service, keys["bob"][0]).get_loras()]
    mine = client(service, alice_key).txt2img(prompt="x <lora:secret-style:1>", **SMALL)
    assert "<lora:alice-water:1>" in mine.info["infotexts"][0]  # the file's stem, as A1111 names it


def test_png_info_bad_image(service, keys):
    headers = {"Authorization": f"Bearer {keys['alice'][0]}"}
    r = requests.post(f"{service.url}/sdapi/v1/png-info", json={"image": "%%%"}, headers=headers)
    assert r.status_code == 400 and "not base64" in r.json()["detail"]
    truncated = io.BytesIO()
    Image.new("RGB", (64, 64)).save(truncated, format="PNG")
    r = requests.post(
        f"{service.url}/sdapi/v1/png-info",
        json={"image": base64.b64encode(truncated.getvalue()[:40]).decode()},
        headers=headers,
    )
    assert r.status_code == 400 and "not a readable image" in r.json()["detail"]


def autov3(blob: bytes) -> str:
    """AUTOMATIC1111's and Civitai's LoRA hash (AutoV3 / addnet): SHA-256 of the tensor data, 12 digits."""
    import hashlib

    header = int.from_bytes(blob[:8], "little")
    return hashlib.sha256(blob[8 + header :]).hexdigest()[:12]


def test_sd_parsers_reads_the_png_and_the_lora_hash_is_that_of_the_downloaded_file(
    service, keys, db, lora_sources, gen_settings
):
    from sd_parsers import ParserManager
    from sd_parsers.data import Generators

    alice_key, alice_id = keys["alice"]
    folder = gen_settings.storage / "loras" / "trained"
    folder.mkdir(parents=True)
    shutil.copy(lora_sources["ink"], folder / "inkdb.safetensors")  # the diffusers-format file
    shutil.copy(lora_sources["water"], folder / "inkdb.kohya.safetensors")  # stands in for its kohya twin
    with db.connection() as conn:
        lora_id = conn.execute(
            "INSERT INTO lora_models (user_id, name, model_file_url, status) VALUES "
            "(%s, 'Ink & Wash', 'loras/trained/inkdb.safetensors', 'ready') RETURNING id",
            (alice_id,),
        ).fetchone()["id"]
    api = client(service, alice_key)
    # named by its database name, the PNG names it by the downloaded file's stem, as AUTOMATIC1111 would
    result = api.txt2img(prompt="a tower <lora:Ink & Wash:0.7>", **SMALL)
    png = io.BytesIO(base64.b64decode(result.json["images"][0]))
    parsed = ParserManager().parse(Image.open(png))
    assert parsed is not None and parsed.generator == Generators.AUTOMATIC1111
    model = next(iter(parsed.models))
    assert model.name == "tiny-sd" and model.hash == result.info["sd_model_hash"]
    assert "<lora:inkdb:0.7>" in parsed.full_prompt
    headers = {"Authorization": f"Bearer {alice_key}"}
    download = requests.get(f"{service.url}/v2/loras/{lora_id}/download", headers=headers)
    assert (
        download.status_code == 200
        and 'filename="inkdb.kohya.safetensors"' not in download.headers["content-disposition"]
    )
    text = parsed.raw_parameters["parameters"]
    assert f'Lora hashes: "inkdb: {autov3(download.content)}"' in text
    assert download.content == (folder / "inkdb.kohya.safetensors").read_bytes()
    other = requests.get(f"{service.url}/v2/loras/{lora_id}/download?format=diffusers", headers=headers)
    assert other.content == (folder / "inkdb.safetensors").read_bytes()
    assert "inkdb.diffusers.safetensors" in other.headers["content-disposition"]
    assert 'filename="inkdb.safetensors"' in download.headers["content-disposition"]
    listed = {lo["name"]: lo for lo in api.get_loras()}
    assert listed["inkdb"]["alias"] == "Ink & Wash" and listed["inkdb"]["metadata"]["id"] == str(lora_id)
    # the PNG's own parameters, resubmitted, name the same LoRA and give the same pixels
    again = api.txt2img(prompt=parsed.full_prompt, **SMALL)
    pixels = [
        Image.open(io.BytesIO(base64.b64decode(r.json["images"][0]))).tobytes() for r in (result, again)
    ]
    assert pixels[0] == pixels[1]
