"""An S3-compatible store (AWS S3, MinIO, SeaweedFS, ...). Layout under the prefix:

    <prefix>/v000012/<file>        every file of the version (blobs, uploaded first)
    <prefix>/v000012/files.json    name -> sha256 + size; written last: the version is
                                   complete (and listed) from then on
    <prefix>/CURRENT               the version served (written after its files.json)

Replicas fetch a version into their own cache directory: download under a temporary
name, verify every sha256 and size against files.json, rename into place.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from xsmoe.common.settings import S3Settings
from xsmoe.common.snapshot_store.base import (
    TMP_PREFIX,
    SnapshotStore,
    StoreError,
    check_file_name,
    describe_files,
)
from xsmoe.model.snapshot_layout import MANIFEST, POINTER, SnapshotError, check_version, sha256_of

log = logging.getLogger(__name__)
FILE_LIST = "files.json"
_LISTED = re.compile(r"^(v\d{6,})/" + re.escape(FILE_LIST) + "$")
_MISSING = {"NoSuchKey", "404", "NotFound"}
T = TypeVar("T")


def client_for(settings: S3Settings) -> Any:
    """A boto3 S3 client whose every call is bounded: connect and read timeouts, and a
    few retries at most (a replica retries a failed fetch itself, with backoff)."""
    keys: dict[str, str] = {}
    if settings.access_key is not None and settings.secret_key is not None:
        keys = {
            "aws_access_key_id": settings.access_key.get_secret_value(),
            "aws_secret_access_key": settings.secret_key.get_secret_value(),
        }
    config = Config(
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        # Path-style: S3-compatible servers behind one host name rarely serve buckets
        # as sub-domains.
        s3={"addressing_style": "path" if settings.endpoint_url else "auto"},
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=settings.endpoint_url,
        region_name=settings.region,
        config=config,
        **keys,
    )


class S3Store(SnapshotStore):
    def __init__(self, client: Any, bucket: str, prefix: str) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}" if self.prefix else f"s3://{bucket}"
        # Bounded and single-threaded: a transfer never outlives the client's timeouts.
        self.transfer = TransferConfig(use_threads=False, multipart_threshold=64 << 20)

    # -- publishing --------------------------------------------------------------------
    def put(self, path: Path) -> None:
        version = self._check(path.name)
        files = describe_files(path)
        if MANIFEST not in files:
            raise SnapshotError(f"no snapshot at {path} ({MANIFEST} missing)")
        listed = self._file_list(version)
        if listed == files:
            return  # published before (a retried step after a crash): nothing to do
        if listed is not None:
            raise SnapshotError(f"{self.url} already holds a different {version}: not overwritten")
        for name in files:  # the blobs first...
            self._call(
                f"upload {name} of {version}",
                lambda name=name: self.client.upload_file(  # type: ignore[misc]
                    str(path / name), self.bucket, self._key(version, name), Config=self.transfer
                ),
            )
        body = json.dumps({"version": version, "files": files}, indent=2).encode()
        self._put_bytes(self._key(version, FILE_LIST), body)  # ...the file list last
        log.info("uploaded %s to %s (%d files)", version, self.url, len(files))

    def set_pointer(self, version: str) -> None:
        self._check(version)
        if self._file_list(version) is None:
            raise SnapshotError(f"cannot point at {version}: {self.url} holds no complete copy")
        self._put_bytes(self._key(POINTER), (version + "\n").encode())

    # -- reading -----------------------------------------------------------------------
    def pointer(self) -> str | None:
        body = self._get_bytes(self._key(POINTER))
        if body is None:
            return None
        name = body.decode("utf-8", "replace").strip()
        return check_version(name, f"{self.url}/{POINTER}") if name else None

    def versions(self) -> list[str]:
        start = f"{self.prefix}/" if self.prefix else ""
        found: list[str] = []

        def page(token: str | None) -> dict[str, Any]:
            extra = {"ContinuationToken": token} if token else {}
            out: dict[str, Any] = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=start, **extra
            )
            return out

        token: str | None = None
        while True:
            reply = self._call("list versions", lambda token=token: page(token))  # type: ignore[misc]
            for item in reply.get("Contents", []):
                match = _LISTED.match(str(item["Key"])[len(start) :])
                if match:
                    found.append(match.group(1))
            if not reply.get("IsTruncated"):
                break
            token = reply.get("NextContinuationToken")
        return sorted(set(found), key=lambda name: int(name[1:]))

    def manifest(self, version: str) -> dict[str, Any]:
        body = self._get_bytes(self._key(self._check(version), MANIFEST))
        if body is None:
            raise SnapshotError(f"{self.url} has no {version}/{MANIFEST}")
        try:
            manifest: dict[str, Any] = json.loads(body)
        except ValueError as exc:
            raise SnapshotError(f"{self.url}: corrupt {version}/{MANIFEST}: {exc}") from exc
        return manifest

    def fetch(self, version: str, cache: Path) -> Path:
        target = cache / self._check(version)
        if (target / MANIFEST).is_file():  # whole fetches are renamed into place
            return target
        files = self._file_list(version)
        if files is None:
            raise SnapshotError(f"{self.url} holds no complete {version} ({FILE_LIST} missing)")
        cache.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{TMP_PREFIX}{version}-", dir=cache))
        try:
            for name, meta in files.items():
                self._download(version, check_file_name(name, f"{version}/{FILE_LIST}"), meta, tmp)
            os.rename(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        log.info("fetched %s from %s into %s", version, self.url, target)
        return target

    def delete(self, version: str) -> None:
        self._check(version)
        self._call(  # unlisted first: no reader starts a fetch of what is going
            f"delete {version}",
            lambda: self.client.delete_object(
                Bucket=self.bucket, Key=self._key(version, FILE_LIST)
            ),
        )
        start = self._key(version, "")
        reply = self._call(
            f"list {version}",
            lambda: self.client.list_objects_v2(Bucket=self.bucket, Prefix=start),
        )
        keys = [{"Key": item["Key"]} for item in reply.get("Contents", [])]
        if keys:
            self._call(
                f"delete {version}",
                lambda: self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": keys, "Quiet": True}
                ),
            )

    # -- helpers -----------------------------------------------------------------------
    def _download(self, version: str, name: str, meta: dict[str, Any], into: Path) -> None:
        file = into / name
        self._call(
            f"download {name} of {version}",
            lambda: self.client.download_file(
                self.bucket, self._key(version, name), str(file), Config=self.transfer
            ),
        )
        size = file.stat().st_size
        if size != meta.get("size") or sha256_of(file) != meta.get("sha256"):
            raise SnapshotError(
                f"{self.url}/{version}: checksum mismatch for {name} "
                f"({size} bytes; corrupt or tampered in the store)"
            )

    def _file_list(self, version: str) -> dict[str, dict[str, Any]] | None:
        body = self._get_bytes(self._key(version, FILE_LIST))
        if body is None:
            return None
        try:
            files: dict[str, dict[str, Any]] = json.loads(body)["files"]
        except (ValueError, KeyError, TypeError) as exc:
            raise SnapshotError(f"{self.url}: corrupt {version}/{FILE_LIST}: {exc}") from exc
        return files

    def _key(self, *parts: str) -> str:
        return "/".join(p for p in (self.prefix, *parts) if p) + ("/" if parts[-1] == "" else "")

    def _put_bytes(self, key: str, body: bytes) -> None:
        self._call(
            f"write {key}",
            lambda: self.client.put_object(Bucket=self.bucket, Key=key, Body=body),
        )

    def _get_bytes(self, key: str) -> bytes | None:
        """The object's bytes; None if there is no such object."""

        def read() -> bytes | None:
            try:
                reply = self.client.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in _MISSING:
                    return None
                raise
            body: bytes = reply["Body"].read()
            return body

        return self._call(f"read {key}", read)

    def _call(self, what: str, call: Callable[[], T]) -> T:
        """Run one request; any failure of the store or the network becomes StoreError."""
        try:
            return call()
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            raise StoreError(f"{self.url}: {what} failed: {exc}") from exc
