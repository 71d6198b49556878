"""The simulated producers, the sample data in data/, and `smartstream produce`."""

import gzip
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pytest

from smartstream_assets import delta, ingestion
from smartstream_assets.cli import parse_drift
from smartstream_assets.demo import SAMPLE_DIR, seed_raw_zone
from smartstream_assets.lake import LocalLake
from smartstream_assets.producers import SAMPLE_SEED, produce, sample_objects
from smartstream_assets.producers.employees import (
    HISTORY_END,
    HISTORY_START,
    Drift,
    EmployeeSimulator,
    EmployeesProducer,
    _cdc_schedule,
)
from smartstream_assets.tables import load_tables

TABLES = load_tables(extra="")
SPEC = TABLES["employees"]
WHEN = datetime(2026, 7, 1, 10, tzinfo=timezone.utc)


def ingest_everything(lake):
    for day, objects in sorted(ingestion.raw_objects_by_date(lake, SPEC).items()):
        ingestion.build_trusted_partition(lake, SPEC, day, objects)
    ingestion.update_current(lake, SPEC)
    return delta.read_current(lake, SPEC.name).to_pandas()


def test_the_sample_files_in_data_are_exactly_what_the_generator_writes():
    on_disk = {p.relative_to(SAMPLE_DIR).as_posix(): p.read_bytes() for p in (SAMPLE_DIR / "raw").rglob("*") if p.is_file()}
    generated = dict(sample_objects(TABLES))
    assert sorted(on_disk) == sorted(generated), "data/raw is out of date: run data/generate.py"
    assert all(on_disk[k] == generated[k] for k in generated)


def test_the_generator_is_deterministic_per_seed():
    first = [o.data for o in EmployeesProducer(SPEC, seed=5).history(employees=200)]
    again = [o.data for o in EmployeesProducer(SPEC, seed=5).history(employees=200)]
    other = [o.data for o in EmployeesProducer(SPEC, seed=6).history(employees=200)]
    assert first == again and first != other


def test_ingesting_the_sample_gives_the_simulated_table_and_quarantines_only_the_bad_lines(tmp_path):
    lake = LocalLake(tmp_path)
    seed_raw_zone(lake, SAMPLE_DIR)
    current = ingest_everything(lake).set_index("EmployeeID").sort_index()

    sim = EmployeeSimulator(SAMPLE_SEED)
    list(EmployeesProducer(SPEC, seed=SAMPLE_SEED)._history(sim, 1500))
    expected = sim.staff.set_index("EmployeeID").sort_index()
    pd.testing.assert_frame_equal(current[expected.columns], expected, check_dtype=False)

    quarantine = delta.read_quarantine(lake, SPEC.name).to_pandas()
    assert set(quarantine["_reason_code"]) == {"unknown_op", "wrong_field_count", "bad_value", "missing_key", "bad_commit_ts"}
    assert len(quarantine) == 10


def test_leaving_depends_on_the_fields_so_a_model_can_learn_it():
    sim = EmployeeSimulator(3)
    staff = sim.full_load(20_000, WHEN)
    rate = staff["LeaveOrNot"].mean()
    by = lambda col: staff.groupby(col)["LeaveOrNot"].mean()  # noqa: E731
    assert 0.25 < rate < 0.45  # the Kaggle data: 0.34
    assert by("City")["Pune"] > by("City")["Bangalore"] + 0.1
    assert by("Gender")["Female"] > by("Gender")["Male"] + 0.1
    assert by("PaymentTier")[2] > by("PaymentTier")[3]
    assert set(staff["Education"]) == {"Bachelors", "Masters", "PHD"} and staff["Age"].between(22, 41).all()


def test_headcount_has_a_season_hires_peak_in_summer_exits_in_spring():
    sim = EmployeeSimulator(1)
    sim.full_load(3000, HISTORY_START)
    counts = {}
    for when in _cdc_schedule(HISTORY_START, HISTORY_END):
        ops, _, _ = sim.changes(when, 400)
        c = counts.setdefault(when.month, {"I": 0, "D": 0})
        for op in ops:
            if op in c:
                c[op] += 1
    assert counts[7]["I"] > 1.5 * counts[1]["I"]
    assert counts[4]["D"] > 1.5 * counts[10]["D"]


def test_drift_shifts_who_is_hired():
    base = EmployeeSimulator(9).hire(4000, WHEN)
    drifted = EmployeeSimulator(9, Drift(age_shift=8, city="Pune", payment_tier_shift=-1)).hire(4000, WHEN)
    assert drifted["Age"].mean() > base["Age"].mean() + 5
    assert (drifted["City"] == "Pune").mean() > 0.8 > (base["City"] == "Pune").mean()
    assert drifted["PaymentTier"].mean() < base["PaymentTier"].mean() - 0.4


def test_produce_continues_the_lakes_current_state_into_todays_folder(tmp_path):
    lake = LocalLake(tmp_path)
    seed_raw_zone(lake, SAMPLE_DIR)
    current = ingest_everything(lake)
    naps = []
    keys = produce(lake, SPEC, files=3, interval=2.5, events=40, seed=1, compress=True, log=lambda _: None, sleep=naps.append)
    assert naps == [2.5, 2.5] and len(keys) == 3
    today = datetime.now(timezone.utc).strftime("%Y/%m/%d")
    assert all(k.startswith(f"raw/hr/employees/{today}/") and k.endswith(".csv.gz") for k in keys)
    lines = [line.split(",") for k in keys for line in gzip.decompress(lake.read_bytes(k)).decode().splitlines()]
    assert len(lines) == 120
    known = set(current["EmployeeID"])
    changed = {int(f[2]) for f in lines if f[0] in ("U", "D")}
    hired = {int(f[2]) for f in lines if f[0] == "I"}
    assert hired and not hired & known  # new hires get new ids
    assert changed and changed <= known | hired  # updates and deletes hit people who exist


def test_the_cli_streams_files_and_rejects_bad_arguments(tmp_path):
    cmd = [sys.executable, "-m", "smartstream_assets.cli", "produce", "employees", "--lake", str(tmp_path)]
    ok = subprocess.run(cmd + ["--files", "2", "--interval", "0", "--events", "10"], capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert len(list((tmp_path / "raw/hr/employees").rglob("*.csv"))) == 2
    bad = subprocess.run(cmd[:-3] + ["nope", "--lake", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "unknown table 'nope'" in bad.stderr
    drift = subprocess.run(cmd + ["--drift", "age=old"], capture_output=True, text=True, timeout=120)
    assert drift.returncode == 2 and "age='old' is not a int" in drift.stderr


def test_drift_option_parsing():
    assert parse_drift("age=+8, city=Pune,tier=-1,share=0.5") == Drift(8, "Pune", -1, 0.5)
    assert parse_drift("") is None
    with pytest.raises(ValueError, match="cannot read 'colour=red'"):
        parse_drift("colour=red")


def test_seeding_the_raw_zone_twice_copies_nothing_the_second_time(tmp_path):
    lake = LocalLake(tmp_path)
    copied, kept = seed_raw_zone(lake, SAMPLE_DIR)
    assert copied == len([p for p in Path(SAMPLE_DIR, "raw").rglob("*") if p.is_file()]) and kept == 0
    assert seed_raw_zone(lake, SAMPLE_DIR) == (0, copied)
