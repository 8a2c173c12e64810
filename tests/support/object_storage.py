"""An S3-compatible server for the tests: moto's ThreadedMotoServer (moto[server], in the dev extras),
the most faithful S3 server that installs here from PyPI (MinIO is in neither Debian nor PyPI)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.waiting import free_port

BUCKET = "enchant-test"
# No credentials from a real profile or instance metadata: only what the tests set.
ISOLATED_ENV = {
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/aws-credentials",
    "AWS_DEFAULT_REGION": "us-east-1",
}
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "enchant-test", "AWS_SECRET_ACCESS_KEY": "enchant-test-secret"}


def moto_server_class():
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        pytest.skip("moto[server] is not installed (pip install 'moto[server]'; it is in the dev extras)")
    return ThreadedMotoServer


@contextmanager
def s3_server(host: str = "127.0.0.1", port: int | None = None) -> Iterator[str]:
    """A running S3 server; yields its endpoint URL."""
    port = port or free_port()
    server = moto_server_class()(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_env(endpoint: str) -> dict[str, str]:
    return {**ISOLATED_ENV, **CREDENTIALS, "AWS_ENDPOINT_URL": endpoint}


def make_bucket(endpoint: str, bucket: str = BUCKET):
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        **{
            "aws_access_key_id": CREDENTIALS["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        },
    )
    client.create_bucket(Bucket=bucket)
    return client


def upload_folder(client, folder: Path, bucket: str = BUCKET, prefix: str = "") -> None:
    """Every file under `folder`, keyed by its relative path (a local storage folder moved to S3)."""
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        key = path.relative_to(folder).as_posix()
        client.put_object(Bucket=bucket, Key=f"{prefix}/{key}" if prefix else key, Body=path.read_bytes())
