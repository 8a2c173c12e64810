"""S3-compatible object storage through boto3 (AWS S3, MinIO, Ceph, R2, moto's server in the tests).

Small objects are one PUT (atomic by nature). Large files go up in parts; a failed multipart upload is
aborted, and S3 shows an object only once its upload completes, so a half-uploaded file is never
visible. Connection failures become StorageUnavailable, which the worker retries with backoff."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from enchant_worker.storage.base import StorageConfigError, StorageUnavailable, StoredFileMissing, check_key

MULTIPART_THRESHOLD = 64 * 2**20  # files above this go up in parts
PART_SIZE = 16 * 2**20  # S3 needs at least 5 MiB per part but the last
_MISSING = {"404", "NoSuchKey", "NotFound"}
_CONFIG = {"NoSuchBucket", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "InvalidBucketName"}


class S3Storage:
    def __init__(
        self,
        client,
        bucket: str,
        prefix: str = "",
        *,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
    ):
        self.client, self.bucket, self.prefix = client, bucket, prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        self.multipart_threshold, self.part_size = multipart_threshold, part_size

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """botocore's errors as ours: a missing object, a configuration a person must fix, or an outage."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError:
            raise StorageConfigError(
                f"no credentials for {self.url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in _MISSING:
                raise StoredFileMissing(f"no stored file {key}") from None
            if code in _CONFIG:
                raise StorageConfigError(
                    f"{self.url}: {code} ({exc}); check the bucket and the credentials "
                    "in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
                ) from exc
            raise StorageUnavailable(f"object storage {self.url} failed on {key}: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(
                f"object storage {self.url} is unreachable ({exc}); the job will be retried"
            ) from exc

    def put_bytes(self, key: str, data: bytes) -> None:
        with self._errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=bytes(data))

    def put_file(self, key: str, path: Path) -> None:
        path = Path(path)
        if path.stat().st_size <= self.multipart_threshold:
            self.put_bytes(key, path.read_bytes())
            return
        full = self._key(key)
        with self._errors(key):
            upload_id = self.client.create_multipart_upload(Bucket=self.bucket, Key=full)["UploadId"]
        try:
            with self._errors(key), open(path, "rb") as f:
                parts: list[dict[str, Any]] = []
                while chunk := f.read(self.part_size):
                    number = len(parts) + 1
                    answer = self.client.upload_part(
                        Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=chunk
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"]})
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self._abort(full, upload_id)
            raise

    def _abort(self, full: str, upload_id: str) -> None:
        """Drops the parts uploaded so far (best effort: when the store is unreachable its lifecycle rule
        for incomplete uploads cleans up; the object was never visible either way)."""
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
        except Exception:
            pass

    def get_bytes(self, key: str) -> bytes:
        with self.open(key) as body:
            with self._errors(key):
                return body.read()

    def open(self, key: str) -> BinaryIO:
        with self._errors(key):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]

    def exists(self, key: str) -> bool:
        try:
            with self._errors(key):
                self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except StoredFileMissing:
            return False
        return True

    def version(self, key: str) -> str:
        with self._errors(key):
            return self.client.head_object(Bucket=self.bucket, Key=self._key(key))["ETag"]

    def list(self, prefix: str) -> list[str]:
        start = self._key(prefix) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        keys: list[str] = []
        with self._errors(prefix):
            for page in self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start
            ):
                keys.extend(item["Key"][cut:] for item in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def url_for(
        self, key: str, expires_s: int, *, content_type: str | None = None, disposition: str | None = None
    ) -> str | None:
        params = {"Bucket": self.bucket, "Key": self._key(key)}
        if content_type:
            params["ResponseContentType"] = content_type
        if disposition:
            params["ResponseContentDisposition"] = disposition
        with self._errors(key):
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=int(expires_s))

    def local_path(self, key: str) -> Path | None:
        return None
