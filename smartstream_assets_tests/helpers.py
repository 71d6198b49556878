"""Small builders shared by the tests."""

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import dagster as dg

from smartstream_assets import delta, ingestion
from smartstream_assets.assets.ingestion import build_ingestion_assets
from smartstream_assets.resources import LakeResource
from smartstream_assets.tables import DmsSettings, TableSpec, load_tables

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def fresh_project_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a subprocess on a new Dagster instance, lake and MLflow store under
    ``tmp_path`` (``home``, ``lake``, ``mlflow.db``), with the built-in table registry only."""
    home = tmp_path / "home"
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = dict(
        os.environ,
        DAGSTER_HOME=str(home),
        SMARTSTREAM_LAKE=str(tmp_path / "lake"),
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path}/mlflow.db",  # never the project's own store
    )
    for name in ("SMARTSTREAM_TABLES", "MLFLOW_REGISTRY_URI", "SMARTSTREAM_PREDICTIONS_DB", "SMARTSTREAM_REVIEWS_DB", "SMARTSTREAM_ALERT_WEBHOOK"):
        env.pop(name, None)
    return env


REAL_DATA = Path(os.environ.get("SMARTSTREAM_REAL_DATA") or Path(__file__).resolve().parents[2] / "shared/data/real")


def real_data(relative: str) -> Path:
    """A file of the shared real datasets (never copied into the project): under
    $SMARTSTREAM_REAL_DATA, else ../shared/data/real beside this checkout. Missing: the
    test skips with the reason, or fails when SMARTSTREAM_REQUIRE_REAL_DATA=1 (CI)."""
    import pytest

    path = REAL_DATA / relative
    if not path.is_file():
        reason = f"real dataset {relative} not found under {REAL_DATA} (set SMARTSTREAM_REAL_DATA)"
        if os.environ.get("SMARTSTREAM_REQUIRE_REAL_DATA") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    return path


def people_spec(fmt="dms_csv", **dms) -> TableSpec:
    """A small table with one column of every type."""
    return TableSpec(
        name="people",
        raw_prefix="raw/src/people/",
        format=fmt,
        primary_key=("id",),
        columns={
            "id": "int64",
            "name": "string",
            "score": "float64",
            "active": "bool",
            "born": "date",
            "seen": "timestamp",
        },
        dms=DmsSettings(**dms) if fmt.startswith("dms") else DmsSettings(),
    )


def rows(table, *columns):
    """The table as a list of tuples of the given columns, in order."""
    cols = [table.column(c).to_pylist() for c in columns]
    return list(zip(*cols))


# ------------------------------------------------------------ the employees table

SPEC = load_tables(extra="")["employees"]
PREFIX = SPEC.raw_prefix
ASSETS = build_ingestion_assets(SPEC)


def emp(op, ts, ident, city="Pune", age="30", leave="0"):
    op_part = f"{op}," if op else ""
    return f"{op_part}{ts},{ident},Bachelors,2017,{city},3,{age},Male,No,2,{leave}\n"


def write(lake, key, *lines):
    lake.write_bytes(PREFIX + key, "".join(lines).encode())


def seed_history(lake):
    write(lake, "2026/03/01/LOAD00000001.csv", *(emp("", "2026-03-01 00:00:00", i) for i in range(1, 6)))
    write(
        lake,
        "2026/03/02/20260302-100000000.csv",
        emp("U", "2026-03-02 10:00:00", 1, city="Bangalore"),
        emp("D", "2026-03-02 10:00:01", 2),
        emp("I", "2026-03-02 10:00:02", 6),
        "X,2026-03-02 10:00:03,7,Bachelors,2017,Pune,3,30,Male,No,2,0\n",
        emp("I", "2026-03-02 10:00:04", 8, age="old"),
        "I,2026-03-02 10:00:05,9,Bachelors\n",
    )


def run(lake, partition=None, *, tags=None, run_config=None, instance=None, raise_on_error=True):
    return dg.materialize(
        ASSETS,
        partition_key=partition,
        tags=tags,
        run_config=run_config,
        resources={"lake": LakeResource(url=lake.url)},
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def current_table(lake, table="employees", **kwargs):
    """The live rows of ``current/<table>`` (a Delta table; ``delta.read_current``), which must exist."""
    found = delta.read_current(lake, table, **kwargs)
    assert found is not None, f"no current Delta table at {lake.describe(ingestion.current_key(table))}"
    return found


def current_state(lake):
    return sorted(rows(current_table(lake), "EmployeeID", "City"))


def _by_source(table):
    if table.num_rows == 0:
        return table
    return table.sort_by([("_source_key", "ascending"), ("_source_line", "ascending")])


def trusted_day(lake, table, day):
    """The trusted changes of one ingest date (without ``ingest_date``), in source order;
    an empty table when the day has none (or there is no trusted table)."""
    found = delta.read_trusted(lake, table, [day])
    return _by_source(found.drop_columns(["ingest_date"]) if "ingest_date" in found.column_names else found)


def quarantine_day(lake, table, day):
    """The quarantined records of one ingest date (without ``ingest_date``), in source order."""
    found = delta.read_quarantine(lake, table, [day])
    return _by_source(found.drop_columns(["ingest_date"]) if "ingest_date" in found.column_names else found)


def has_trusted_day(lake, table, day) -> bool:
    """Whether the trusted Delta table of ``table`` has a partition (rows) for ``day``."""
    return day in delta.trusted_days(lake, table)


def write_current(lake, table, data):
    """Replace ``current/<table>`` with ``data`` (a pyarrow Table or a DataFrame of live rows),
    as a Delta table the way the product lays it out: every row with ``_op = 'insert'``."""
    import pyarrow as pa
    from deltalake import write_deltalake

    if not isinstance(data, pa.Table):
        data = pa.Table.from_pandas(data.reset_index(drop=True), preserve_index=False)
    data = data.replace_schema_metadata(None)
    data = data.add_column(0, "_op", pa.array(["insert"] * data.num_rows, pa.string()))
    write_deltalake(
        delta.table_uri(lake, ingestion.current_key(table)), data, mode="overwrite", schema_mode="overwrite",
        storage_options=delta.storage_options(lake),
    )


def tick(lake, cursor=None, instance=None):
    """One evaluation of employees_raw_sensor on ``lake``."""
    from smartstream_assets.definitions import defs

    sensor = defs.get_sensor_def("employees_raw_sensor")
    with dg.build_sensor_context(
        instance=instance or dg.DagsterInstance.ephemeral(),
        cursor=cursor,
        resources={"lake": LakeResource(url=lake.url)},
        definitions=defs,
    ) as context:
        return sensor(context)


# ------------------------------------------------------------ a real HTTP receiver

# Slack webhook URLs carry their secret in the path; tests check it never leaks.
SECRET_PATH = "/services/T0SMART01/B0STREAM2/xoxbSecretWebhookToken42"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}


@dataclass
class Receiver:
    """Answers POSTs from a script of (status, body) pairs, then with ``default``."""

    port: int
    script: list[tuple[int, str]]
    default: tuple[int, str]
    delay: float
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str = SECRET_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def next_answer(self) -> tuple[int, str]:
        return self.script.pop(0) if self.script else self.default


@contextmanager
def http_receiver(script=(), default=(200, "ok"), delay: float = 0.0, content_type: str = "text/plain"):
    """A real HTTP server on a free port of 127.0.0.1 that records every POST."""
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length", 0))
            receiver.requests.append(Received(self.path, dict(self.headers), self.rfile.read(length)))
            status, body = receiver.next_answer()
            if receiver.delay:
                time.sleep(receiver.delay)
            data = body.replace("{path}", self.path).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(server.server_address[1], list(script), default, delay)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()


def dead_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ ML projects


def ml_resources(lake_url: str, tracking_uri: str, webhook: str = "") -> dict:
    """The resources every asset of the graph needs, on a lake folder and an MLflow store
    (no predictions database, no labelled-reviews database, alerts to ``webhook`` or the log)."""
    from smartstream_assets.io import LakeParquetIOManager
    from smartstream_assets.resources import AlertResource, MlflowResource, PredictionsDbResource, SourceDbResource

    return {
        "lake": LakeResource(url=lake_url),
        "ml_io": LakeParquetIOManager(lake=LakeResource(url=lake_url)),
        "mlflow": MlflowResource(tracking_uri=tracking_uri),
        "alerts": AlertResource(webhook_url=webhook),
        "predictions_db": PredictionsDbResource(),
        "reviews_db": SourceDbResource(),
    }


QUIET_RUN = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class LakeProject:
    """A lake folder, a sqlite MLflow store and an ephemeral Dagster instance that live for
    a test (or a module): what a domain's end-to-end tests run the graph on."""

    def __init__(self, root: Path, webhook: str = ""):
        from smartstream_assets.lake import LocalLake
        from smartstream_assets.ml.registry import Registry

        self.root = Path(root)
        self.lake = LocalLake(self.root / "lake")
        self.tracking_uri = f"sqlite:///{self.root}/mlflow.db"
        self.registry = Registry(self.tracking_uri)
        self.instance = dg.DagsterInstance.ephemeral()
        self.resources = ml_resources(self.lake.url, self.tracking_uri, webhook)

    def copy_sample(self, folder: str) -> None:
        """The repository's sample objects under ``data/raw/<folder>`` into the lake, same keys."""
        from smartstream_assets.demo import SAMPLE_DIR

        for path in sorted(p for p in (SAMPLE_DIR / "raw" / folder).rglob("*") if p.is_file()):
            self.lake.write_bytes(path.relative_to(SAMPLE_DIR).as_posix(), path.read_bytes())

    def ingest(self, *specs: TableSpec) -> None:
        """Every raw day of each table into trusted, then its current state."""
        for spec in specs:
            for day, objects in sorted(ingestion.raw_objects_by_date(self.lake, spec).items()):
                ingestion.build_trusted_partition(self.lake, spec, day, objects)
            ingestion.update_current(self.lake, spec)

    def run(self, assets, selection, *, partition=None, run_config=None, resources=None, tags=None) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            list(assets), selection=selection, resources={**self.resources, **(resources or {})}, instance=self.instance,
            run_config={**QUIET_RUN, **(run_config or {})}, partition_key=partition, tags=tags, raise_on_error=False,
        )  # fmt: skip

    @staticmethod
    def failures(result) -> str:
        return "\n".join(e.event_specific_data.error.to_string() for e in result.all_events if e.event_type_value == "STEP_FAILURE")

    def materialize_metadata(self, assets, asset_keys, *, ok=True, **kwargs) -> dict:
        """Materialise ``asset_keys``; asset key -> its materialisation's metadata values.
        ``ok=False``: the run must fail; returns ``{"failures": the step errors}``."""
        result = self.run(assets, dg.AssetSelection.assets(*asset_keys), **kwargs)
        if ok:
            assert result.success, self.failures(result)
        else:
            assert not result.success
            return {"failures": self.failures(result)}
        return {e.asset_key: {k: v.value for k, v in e.materialization.metadata.items()} for e in result.get_asset_materialization_events()}

    def tick(self, definitions, sensor_name: str, cursor=None):
        sensor = definitions.get_sensor_def(sensor_name)
        with dg.build_sensor_context(instance=self.instance, cursor=cursor, definitions=definitions) as context:
            return sensor(context)

    def env(self, **extra: str) -> dict:
        """The environment of a CLI subprocess on this project's lake and MLflow store."""
        env = dict(os.environ, SMARTSTREAM_LAKE=self.lake.url, MLFLOW_TRACKING_URI=self.tracking_uri, **extra)
        env.pop("SMARTSTREAM_TABLES", None)
        return env
