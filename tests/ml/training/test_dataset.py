"""Every bad input of the issue, with a message a person can act on; captions; buckets."""

import struct
import zlib

import pytest
from PIL import Image

from enchant_worker.errors import InvalidJob
from enchant_worker.training.base_model import resolve_base_model
from enchant_worker.training.buckets import bucket_for, epoch_batches, make_buckets
from enchant_worker.training.dataset import load_dataset, prepare_dataset


def _bomb_png(path, width=100_000, height=100_000):
    """A valid 1x1 PNG whose header claims width x height pixels."""
    Image.new("L", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = data[12:29]  # type + 13 bytes of IHDR data
    ihdr[4:12] = struct.pack(">II", width, height)
    data[12:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    path.write_bytes(bytes(data))


@pytest.fixture
def unusable(make_spec, tmp_path):
    def check(images, **kwargs) -> str:
        with pytest.raises(InvalidJob) as info:
            prepare_dataset(make_spec(images, **kwargs), tmp_path / "data")
        return str(info.value)

    return check


def test_prepare_copies_images_with_captions_and_flags_small_ones(images, tmp_path, make_spec):
    (images / "img1.txt").write_text("  from the sidecar  ")
    spec = make_spec(images, captions={"img2.png": "from the request"}, trigger_words=["inkwash", "sumi"])
    ds = prepare_dataset(spec, tmp_path / "data")
    captions = [im.caption for im in ds.images]
    assert captions[0] == "inkwash, sumi, a red castle at dusk"
    assert captions[1] == "inkwash, sumi, from the sidecar"
    assert captions[2] == "inkwash, sumi, from the request"
    assert captions[3] == "inkwash, sumi"
    assert [im.small for im in ds.images] == [False, False, False, False, True]
    assert ds.flagged == [
        {"image": str(images / "img4.png"), "size": [48, 48], "warning": "smaller than 64px"}
    ]
    assert (tmp_path / "data" / "0000.txt").read_text() == captions[0]
    assert load_dataset(tmp_path / "data") == ds


def test_caption_already_starting_with_the_trigger_is_kept(images, tmp_path, make_spec):
    (images / "img0.txt").write_text("inkwash, a red castle")
    ds = prepare_dataset(make_spec(images), tmp_path / "data")
    assert ds.images[0].caption == "inkwash, a red castle"


def test_not_an_image(images, unusable):
    (images / "notes.pdf").write_bytes(b"%PDF-1.4 not really")
    message = unusable(images)
    assert "notes.pdf is not an image (PNG, JPEG, WebP or BMP expected); remove it" in message


def test_corrupt_image(images, unusable):
    good = (images / "img0.png").read_bytes()
    (images / "broken.png").write_bytes(good[: len(good) // 2])
    message = unusable(images)
    assert "broken.png is corrupt or truncated" in message and "re-export or remove it" in message


def test_all_unusable_files_are_named_at_once(images, unusable):
    (images / "a.gif").write_bytes(b"GIF89a nonsense")
    (images / "b.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated jpeg")
    message = unusable(images)
    assert "2 unusable file(s)" in message and "a.gif" in message and "b.jpg" in message


def test_decompression_bomb(images, unusable):
    _bomb_png(images / "bomb.png")
    message = unusable(images)
    assert "bomb.png" in message and "decompression bomb" in message and "downscale it" in message


def test_too_few_images(tmp_path, write_images, unusable):
    folder = write_images(tmp_path / "few", sizes=[(64, 64)] * 3)
    assert "3 image(s) given; between 5 and 50 are needed" in unusable(folder)


def test_too_many_images(tmp_path, write_images, make_spec):
    folder = write_images(tmp_path / "many", sizes=[(16, 16)] * 6)
    with pytest.raises(InvalidJob, match=r"training_images: 6 image\(s\) given; between 2 and 5 are needed"):
        prepare_dataset(make_spec(folder), tmp_path / "data", min_images=2, max_images=5)


def test_missing_path_and_unknown_caption_key(images, unusable):
    assert "training_images: not found: '/nowhere'" in unusable(images, training_images=["/nowhere"])
    assert "captions: no training image is named 'nope.png'" in unusable(images, captions={"nope.png": "x"})


def test_tiny_image_is_refused(images, unusable):
    Image.new("RGB", (8, 8)).save(images / "speck.png")
    assert "speck.png is 8x8; each side must be at least 16px" in unusable(images)


def test_unknown_base_model(tmp_path, tiny_model):
    with pytest.raises(InvalidJob) as info:
        resolve_base_model("sd-unknown", tiny_model.parent)
    assert "base_model: unknown base model 'sd-unknown'; available: tiny-sd" in str(info.value)
    assert resolve_base_model("tiny-sd", tiny_model.parent) == tiny_model


def test_base_model_of_another_family_is_refused(tmp_path):
    (tmp_path / "xl").mkdir()
    (tmp_path / "xl" / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    with pytest.raises(InvalidJob, match="is a StableDiffusionXLPipeline; LoRA training supports"):
        resolve_base_model("xl", tmp_path)


def test_buckets_never_upscale_and_keep_the_aspect():
    buckets = make_buckets(512, 64)
    assert all(w % 64 == 0 and h % 64 == 0 and w * h <= 512 * 512 for w, h in buckets)
    assert bucket_for(1024, 1024, buckets, 64) == (512, 512)
    assert bucket_for(1600, 900, buckets, 64) == (640, 384)  # wide stays wide
    assert bucket_for(300, 300, buckets, 64) == (256, 256)  # small: shrunk bucket, no upscaling
    w, h = bucket_for(300, 600, buckets, 64)
    assert w <= 300 and h <= 600 and h > w


def test_epoch_order_is_reproducible_and_batches_share_a_bucket():
    buckets_of = [(64, 64), (64, 64), (64, 96), (64, 64), (64, 96)]
    first = epoch_batches(buckets_of, 2, seed=3, epoch=0)
    assert first == epoch_batches(buckets_of, 2, seed=3, epoch=0)
    assert sorted(i for batch in first for i in batch) == [0, 1, 2, 3, 4]
    assert all(len({buckets_of[i] for i in batch}) == 1 for batch in first)
