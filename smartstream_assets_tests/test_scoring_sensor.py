"""`<domain>_scoring_sensor`: new data requests scoring (instead of waiting for the
cadence's schedule), once per materialisation, only once there is a champion."""

from datetime import datetime, timezone

import dagster as dg

from smartstream_assets.definitions import defs
from smartstream_assets.domains.employees import ATTRITION
from smartstream_assets.domains.vitals import VITALS_DOMAIN
from smartstream_assets.keys import asset_keys
from smartstream_assets.sensors import scoring_partitions, scoring_sensor_name, scoring_watch_key

MONTHLY = dg.MonthlyPartitionsDefinition(start_date="2024-01-01")


def test_a_partitioned_change_scores_its_partition_a_whole_state_change_the_latest_period():
    last = MONTHLY.get_last_partition_key()
    assert scoring_partitions([], MONTHLY) == {}
    # the current state changed twice (unpartitioned): one request, the newest event's id
    assert scoring_partitions([(5, None), (9, None)], MONTHLY) == {last: 9}
    # partitions the job has are scored themselves; one it does not have falls back to the latest
    assert scoring_partitions([(3, "2025-02-01"), (4, "2025-02-01"), (7, "not-a-month"), (8, "2025-03-01")], MONTHLY) == {
        "2025-02-01": 4, last: 7, "2025-03-01": 8,
    }


def test_every_domain_watches_what_its_scoring_reads():
    assert scoring_watch_key(ATTRITION) == dg.AssetKey(["employees", "current"])
    assert scoring_watch_key(VITALS_DOMAIN) == dg.AssetKey(["vitals", "hourly"])
    names = {s.name for s in defs.sensors}
    for domain in ("employees", "co2", "reviews", "vitals"):
        sensor = defs.get_sensor_def(f"{domain}_scoring_sensor")
        assert sensor.job_name == f"{domain}_scoring" and sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert len(names) == len(list(defs.sensors))


def tick(instance, cursor=None):
    sensor = defs.get_sensor_def(scoring_sensor_name(ATTRITION))
    with dg.build_sensor_context(instance=instance, cursor=cursor, definitions=defs) as context:
        return sensor(context)


def test_new_current_state_requests_scoring_once_and_only_with_a_champion():
    current, champion = dg.AssetKey(["employees", "current"]), asset_keys(ATTRITION)["deployment"]
    with dg.DagsterInstance.ephemeral() as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(current))  # before the sensor was on
        first = tick(instance)
        assert first.run_requests == [] and "from now on" in first.skip_reason.skip_message
        quiet = tick(instance, first.cursor)
        assert quiet.run_requests == [] and "no new employees/current" in quiet.skip_reason.skip_message

        instance.report_runless_asset_event(dg.AssetMaterialization(current))
        waiting = tick(instance, quiet.cursor)
        assert waiting.run_requests == [] and "no champion yet" in waiting.skip_reason.skip_message
        assert int(waiting.cursor) > int(quiet.cursor)  # that change is passed, not requested later

        instance.report_runless_asset_event(dg.AssetMaterialization(champion))
        instance.report_runless_asset_event(dg.AssetMaterialization(current))
        instance.report_runless_asset_event(dg.AssetMaterialization(current))
        requested = tick(instance, waiting.cursor)
        [run] = requested.run_requests
        partition = ATTRITION.scoring_cadence.partitions_def().get_last_partition_key()
        assert run.partition_key == partition and run.tags["smartstream/trigger"] == "new_data"
        newest = instance.fetch_materializations(current, limit=1).records[0].storage_id
        assert run.run_key == f"employees-score-{partition}-{newest}" and requested.cursor == str(newest)
        # the partition is one the scoring job has: the schedule's last complete month
        assert datetime.strptime(partition, "%Y-%m-%d").replace(tzinfo=timezone.utc) < datetime.now(timezone.utc)
        again = tick(instance, requested.cursor)
        assert again.run_requests == []
