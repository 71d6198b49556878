"""A real S3 server for the tests: SeaweedFS on 127.0.0.1, started once per session.

It is started by the same code as `make stack` (``local_stack.start_seaweedfs``), on
free ports in a temporary folder, so it coexists with a running stack and with
other test runs. If `weed` is missing the fixture errors: S3 tests fail, never skip.
"""

import uuid
import warnings

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
def s3_env(s3_server, monkeypatch, request) -> S3Lake:
    """boto3's standard variables point at the session's SeaweedFS for this test only
    (monkeypatch restores them); returns an ``S3Lake`` on a prefix of its own."""
    if request.node.get_closest_marker("integration") is None:
        warnings.warn(
            f"{request.node.nodeid} uses the S3 server but is not marked integration, so "
            "`make test-fast` runs it: see the marker lists in conftest.py",
            pytest.PytestWarning,
            stacklevel=1,
        )
    for name in _AWS_NOISE:
        monkeypatch.delenv(name, raising=False)
    for name, value in s3_server.aws_env().items():
        monkeypatch.setenv(name, value)
    return S3Lake(s3_server.bucket, f"tests/{uuid.uuid4().hex[:12]}")


# --- markers (registered in pytest.ini; `make test-fast` runs -m "not slow and not integration")
# `integration`: the test starts a real server or subprocess. Most are found by the fixtures
# they use (directly or through another fixture), so a new test is marked by what it uses;
# the rest are whole modules, or single tests, listed here.
# `slow`: in process, more than ~3 s. Modules slow throughout say so themselves
# (`pytestmark = pytest.mark.slow`) or, when this file must do it, are listed here.
# Single tests are "file.py::test_name" (without parameters).
INTEGRATION_FIXTURES = frozenset({"s3_server", "s3_env", "postgres_server"})
# a fixture parametrised over lakes that asks for s3_env at run time (getfixturevalue),
# which collection cannot see: its "s3" parameter is integration
INTEGRATION_PARAMS = frozenset({"s3"})
INTEGRATION_MODULES = frozenset({
    "test_cli.py",  # the dagster CLI in a subprocess
    "test_cli_hostile.py",  # the dagster CLI in a subprocess
    "test_demo.py",  # the demo in a subprocess
    "test_deploy_image.py",  # deploy/install.sh into a fresh venv, `dagster api grpc` from it
    "test_celery.py",  # redis-server, Celery workers, the dagster CLI
    "test_s3.py",  # SeaweedFS, the MLflow server, the stack CLI
    "test_serving.py",  # an MLflow server, `mlflow models serve`, PostgreSQL
    "test_ui_browser.py",  # the demo in a subprocess, dagster dev, headless chromium
})
INTEGRATION_TESTS = frozenset({
    "test_ml_lineage.py::test_a_held_candidate_becomes_champion_when_a_person_approves_it",  # the dagster CLI
    "test_producers.py::test_the_cli_streams_files_and_rejects_bad_arguments",  # the producer CLI
    "test_plots.py::test_charts_render_off_screen_without_pyplot",  # python -c
    "test_drift.py::test_importing_the_ml_modules_loads_no_heavy_library",  # python -c
    "test_ingestion_hardened.py::test_a_killed_write_leaves_nothing_a_glob_over_the_zone_can_count",  # a killed writer
})
SLOW_MODULES = frozenset({
    "test_training.py",  # a hyperparameter search in most tests
    "test_ml_lineage.py",  # the employees ML loop through Dagster, 5-110 s a test
})
# module -> fixtures that take more than ~3 s to set up (once per module, but whichever
# test comes first pays, so every test using them is slow)
SLOW_FIXTURES = {
    "test_ml_errors.py": frozenset({"project"}),  # trains and promotes a champion through Dagster
}
SLOW_TESTS = frozenset({
    "test_producers.py::test_the_sample_files_in_data_are_exactly_what_the_generator_writes",
    "test_producers.py::test_the_generator_is_deterministic_per_seed",
    "test_producers.py::test_ingesting_the_sample_gives_the_simulated_table_and_quarantines_only_the_bad_lines",
    "test_producers.py::test_headcount_has_a_season_hires_peak_in_summer_exits_in_spring",
    "test_plots.py::test_dashboard_puts_the_three_panels_side_by_side_in_one_modest_png",
})


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.path.name
        test = f"{module}::{getattr(item, 'originalname', item.name)}"
        fixtures = set(getattr(item, "fixturenames", ()))
        callspec = getattr(item, "callspec", None)
        params = {v for v in callspec.params.values() if isinstance(v, str)} if callspec else set()
        if module in INTEGRATION_MODULES or test in INTEGRATION_TESTS or fixtures & INTEGRATION_FIXTURES or params & INTEGRATION_PARAMS:
            item.add_marker(pytest.mark.integration)
        if module in SLOW_MODULES or test in SLOW_TESTS or fixtures & SLOW_FIXTURES.get(module, frozenset()):
            item.add_marker(pytest.mark.slow)

