"""The production Dagster instance (``instance_config.py``) on a real PostgreSQL: run,
event-log and schedule storage in Postgres, the run queue and pools, run monitoring; the
ingestion + ML graph of a domain runs on it."""

from datetime import date

import dagster as dg
import pytest

from smartstream_assets.instance_config import PASSWORD_ENV, production_instance_yaml, write_instance

from .postgres import postgres_server  # noqa: F401  (the session fixture)


def test_the_yaml_names_no_password_and_refuses_a_queue_of_nothing():
    text = production_instance_yaml(host="127.0.0.1", port=5432, user="u", db="d")
    assert f"env: {PASSWORD_ENV}" in text and "password: " not in text.replace("password:\n", "")
    with pytest.raises(ValueError, match="max_concurrent_runs"):
        production_instance_yaml(host="h", port=1, user="u", db="d", max_concurrent_runs=0)


@pytest.mark.slow
def test_ingestion_and_training_run_on_the_postgres_instance(tmp_path, postgres_server, monkeypatch):  # noqa: F811
    from smartstream_assets.keys import asset_keys, table_asset_keys
    from smartstream_assets.domains.vitals import VITALS_DOMAIN

    from .test_vitals import DEFS, FAST, VitalsProject

    with postgres_server.connect() as conn:
        conn.execute("CREATE DATABASE dagster_instance_test")
    monkeypatch.setenv(PASSWORD_ENV, postgres_server.password)
    home = tmp_path / "home"
    write_instance(home, host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
                   db="dagster_instance_test", max_concurrent_runs=3)  # fmt: skip
    project = VitalsProject(tmp_path)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert instance.run_monitoring_enabled and instance.run_coordinator.dequeue_interval_seconds == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 3
        project.instance = instance
        # ingestion: every day of the labelled history in one run, then current
        days = sorted(o.key.split("/")[3:6] for o in project.lake.list("raw/icu/vitals_labelled/"))
        first, last = (date(*map(int, days[0])).isoformat(), date(*map(int, days[-1])).isoformat())
        ingest = project.run(DEFS.assets, dg.AssetSelection.assets(*table_asset_keys("vitals_labelled")),
                             tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last})  # fmt: skip
        assert ingest.success, project.failures(ingest)
        keys = asset_keys(VITALS_DOMAIN)
        trained = project.run(DEFS.assets, dg.AssetSelection.assets(keys["features"], keys["model"], keys["deployment"]), run_config=FAST)
        assert trained.success, project.failures(trained)
        runs = instance.get_runs()
        assert len(runs) == 2 and all(r.is_success for r in runs)
        deployment = instance.get_latest_materialization_event(keys["deployment"])
        assert deployment.asset_materialization.metadata["deployment_status"].value == "promoted"
    # it really is Postgres that holds them
    import psycopg

    with psycopg.connect(host=postgres_server.host, port=postgres_server.port, user=postgres_server.user,
                         password=postgres_server.password, dbname="dagster_instance_test", autocommit=True) as conn:  # fmt: skip
        assert conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
        materialised = conn.execute("SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION'").fetchone()[0]
        assert materialised >= 5
