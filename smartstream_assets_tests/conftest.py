"""A real S3 server for the tests: SeaweedFS on 127.0.0.1, started once per session.

It is started by the same code as `make stack` (``local_stack.start_seaweedfs``), on
free ports in a temporary folder, so it coexists with a running stack and with
other test runs. If `weed` is missing the fixture errors: S3 tests fail, never skip.
"""

import uuid

import pytest

from smartstream_assets import local_stack
from smartstream_assets.lake import S3Lake

TEST_ACCESS_KEY = "smartstream-test"
TEST_SECRET_KEY = "smartstream-test-secret-7b2e41"
TEST_BUCKET = "smartstream-test"

# Variables of the caller's shell that would change what boto3 does in the tests.
_AWS_NOISE = ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION", "SMARTSTREAM_LAKE")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> local_stack.SeaweedFS:
    """The session's SeaweedFS: ``endpoint_url``, ``access_key``, ``secret_key``, ``bucket``."""
    server = local_stack.start_seaweedfs(
        tmp_path_factory.mktemp("seaweedfs"), TEST_ACCESS_KEY, TEST_SECRET_KEY, bucket=TEST_BUCKET
    )
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> S3Lake:
    """boto3's standard variables point at the session's SeaweedFS for this test only
    (monkeypatch restores them); returns an ``S3Lake`` on a prefix of its own."""
    for name in _AWS_NOISE:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.aws_env().items():
        monkeypatch.setenv(name, value)
    return S3Lake(s3_server.bucket, f"tests/{uuid.uuid4().hex[:12]}")
