"""The vitals sample and the seed's streaming producer (``producers.vitals``): a septic
minority whose vitals drift before onset, messages that ingest cleanly, the required
columns checked first, batches of the asked size, and Ctrl-C after a whole batch."""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from smartstream_assets import delta
from smartstream_assets.lake import LocalLake
from smartstream_assets.producers.vitals import (
    LABEL,
    MESSAGE_COLUMNS,
    ProducerError,
    population,
    prepare_rows,
    read_rows,
    stream_vitals,
)
from smartstream_assets.tables import load_tables

from .helpers import LakeProject, current_table

TABLES = load_tables(extra="")
SMARTSTREAM = str(Path(sys.executable).with_name("smartstream"))


def test_a_septic_minority_drifts_before_onset_and_is_labelled_six_hours_ahead():
    frame = population(300, seed=1, start=datetime(2026, 11, 1, tzinfo=timezone.utc))
    septic = frame.groupby("patient_id")[LABEL].max()
    assert 0.03 < septic.mean() < 0.15
    labelled = frame.loc[frame[LABEL] == 1]
    assert labelled.groupby("patient_id")[LABEL].size().ge(6).all()  # the 6 hours before onset, and after it
    assert labelled["HR"].mean() > frame.loc[frame["patient_id"].isin(septic.index[septic == 0]), "HR"].mean() + 10
    assert frame["Temp"].isna().mean() > 0.5 and frame["HR"].isna().mean() < 0.15  # charted as often as on a ward
    assert not frame.duplicated(["patient_id", "ts"]).any()


def test_the_sample_ingests_without_quarantine(tmp_path):
    project = LakeProject(tmp_path)
    project.copy_sample("icu")
    project.ingest(TABLES["vitals"], TABLES["vitals_labelled"])
    live = current_table(project.lake, "vitals").to_pandas()
    labelled = current_table(project.lake, "vitals_labelled").to_pandas()
    assert len(live) > 100 and live["patient_id"].nunique() == 30 and live["HR"].isna().any()
    assert labelled["SepsisLabel"].sum() > 0 and labelled["patient_id"].nunique() == 240
    assert delta.trusted_days(project.lake, "vitals") and delta.trusted_days(project.lake, "vitals_labelled")
    assert [delta.count_rows(project.lake, delta.quarantine_table(t)) for t in ("vitals", "vitals_labelled")] == [0, 0]


def test_required_columns_are_checked_first_and_named(tmp_path):
    rows = population(2, seed=0, start=datetime(2026, 11, 1, tzinfo=timezone.utc)).drop(columns=["ts"])
    path = tmp_path / "rows.csv"
    rows.drop(columns=["Resp", "ICULOS"]).to_csv(path, index=False)
    with pytest.raises(ProducerError, match="lacks the required column\\(s\\) Resp, ICULOS"):
        read_rows(path)
    rows.to_csv(path, index=False)
    timed = read_rows(path)
    assert list(timed.columns) == list(MESSAGE_COLUMNS) and not timed.duplicated(["patient_id", "ts"]).any()
    assert pd.to_datetime(timed["ts"]).is_monotonic_increasing
    with pytest.raises(ProducerError, match="not an ISO-8601"):
        prepare_rows(rows.assign(ts="yesterday"))


def test_batches_hold_rate_times_seconds_messages_and_nulls_stay_null(tmp_path):
    lake = LocalLake(tmp_path)
    rows = prepare_rows(population(3, seed=2, start=datetime(2026, 11, 1, tzinfo=timezone.utc), labelled=False))
    waits = []
    keys = stream_vitals(lake, TABLES["vitals"], rows, rate=10, batch_seconds=2, log=lambda line: None, sleep=waits.append)
    sizes = [len(lake.read_bytes(k).splitlines()) for k in keys]
    assert sizes[:-1] == [20] * (len(keys) - 1) and sum(sizes) == len(rows) and len(waits) == len(keys) - 1
    first = [json.loads(line) for line in lake.read_bytes(keys[0]).splitlines()]
    assert any(m["Temp"] is None for m in first) and set(first[0]) == set(MESSAGE_COLUMNS)
    assert keys[0].startswith(TABLES["vitals"].raw_prefix) and keys[0].endswith("-000000.jsonl")
    assert len(stream_vitals(lake, TABLES["vitals"], rows, rate=10, batch_seconds=2, batches=2, log=lambda l: None, sleep=lambda s: None)) == 2
    with pytest.raises(ProducerError, match="> 0"):
        stream_vitals(lake, TABLES["vitals"], rows, rate=0, batch_seconds=1)


@pytest.mark.integration
def test_ctrl_c_stops_the_cli_after_a_whole_batch(tmp_path):
    env = {**os.environ, "SMARTSTREAM_LAKE": str(tmp_path / "lake")}
    proc = subprocess.Popen([SMARTSTREAM, "produce", "vitals", "--rate", "25", "--batch-seconds", "0.5", "--seed", "3"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    lake = LocalLake(tmp_path / "lake")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(list(lake.list(TABLES["vitals"].raw_prefix))) < 3:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err[-2000:]
    assert "stopping after the current batch" in out
    keys = sorted(o.key for o in lake.list(TABLES["vitals"].raw_prefix))
    assert len(keys) >= 3 and all(len(lake.read_bytes(k).splitlines()) == 12 for k in keys)  # 25/s x 0.5 s, whole
    missing = subprocess.run([SMARTSTREAM, "produce", "vitals", "--from-csv", str(tmp_path / "nope.csv")], env=env,
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    assert missing.returncode == 2 and "cannot read" in missing.stderr
