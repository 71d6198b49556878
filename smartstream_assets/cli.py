"""The ``smartstream`` command.

    smartstream produce employees --files 10 --interval 5 --events 200
    smartstream produce employees --drift age=+8,city=Pune,tier=-1   # inject drift
    smartstream produce co2 --weeks 4 [--drift level=+3,noise=x2]     # the next weekly readings
    smartstream produce reviews --hours 3 [--drift topic=laptops]      # the next hourly review drops
    smartstream produce vitals --from-csv FILE --rate 50 --batch-seconds 1  # stream vital signs until Ctrl-C

    smartstream endpoint test co2 [--url http://127.0.0.1:5001]          # ask the served champion
    smartstream iam-policy --bucket my-lake [--prefix lake]             # the code location's least-privilege policy
    smartstream results employees [--url http://127.0.0.1:3000]         # latest drift report and gate, from the UI's GraphQL

    smartstream table history employees [--zone current] [--limit 20]   # the Delta table's versions
    smartstream table read employees --version 12 [--output v12.parquet] # the table as of a version (audit, rollback)
    smartstream table maintain employees [--retention-hours 168]        # Z-order / compact, vacuum, checkpoint
    smartstream table migrate [employees ...]                          # the Parquet layout -> Delta tables

``produce`` is the stand-in for a producer writing into S3: it streams generated
CDC files into the lake's raw zone (``--lake``, else $SMARTSTREAM_LAKE, else the
local default) so the raw sensors pick them up. Dagster's own CLI does the rest
(``dagster asset materialize``, ``dagster sensor preview``).
"""

from __future__ import annotations

import argparse
import sys
import time

from .lake import LakeError, lake_from_url
from .tables import RegistryError, load_tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="smartstream", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    produce = commands.add_parser("produce", help="stream generated CDC files into the lake's raw zone")
    produce.add_argument("table", nargs="?", default="employees")
    produce.add_argument("--files", type=int, default=10, help="how many files (0: until interrupted)")
    produce.add_argument("--interval", type=float, default=5.0, help="seconds between files")
    produce.add_argument("--events", type=int, default=200, help="changes per file")
    produce.add_argument("--seed", type=int, default=None, help="default: the current time")
    produce.add_argument(
        "--drift",
        default="",
        help="employees: age=+8,city=Pune,tier=-1[,share=0.8]; co2: level=+3,noise=x2; reviews: topic=laptops|delivery[,share=0.8]",
    )
    produce.add_argument("--weeks", type=int, default=1, help="co2: how many weekly readings per station")
    produce.add_argument("--hours", type=int, default=1, help="reviews: how many hourly objects, after the newest hour in the lake")
    produce.add_argument("--gzip", action="store_true", help="write .csv.gz like DMS with CompressionType GZIP")
    produce.add_argument("--from-csv", default=None, help="vitals: stream these rows (CSV, .csv.gz); default: a generated population")
    produce.add_argument("--rate", type=float, default=20.0, help="vitals: messages per second")
    produce.add_argument("--batch-seconds", type=float, default=1.0, help="vitals: seconds between micro-batch objects")
    produce.add_argument("--batches", type=int, default=0, help="vitals: stop after this many batches (0: until the rows run out or Ctrl-C)")
    produce.add_argument("--lake", default=None, help="s3://bucket/prefix or a folder")
    endpoint = commands.add_parser("endpoint", help="test a served model (make serve MODEL=...)")
    endpoint.add_argument("action", choices=["test"])
    endpoint.add_argument("domain", help="the domain whose champion is served, e.g. co2")
    endpoint.add_argument("--url", default="http://127.0.0.1:5001", help="where make serve listens (default %(default)s)")
    endpoint.add_argument("--lake", default=None, help="s3://bucket/prefix or a folder (the features are read there)")
    endpoint.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the answer")
    iam = commands.add_parser("iam-policy", help="print the code location's least-privilege IAM policy for the lake bucket")
    iam.add_argument("--bucket", required=True, help="the lake's bucket")
    iam.add_argument("--prefix", default="", help="the lake's prefix in the bucket (s3://bucket/PREFIX)")
    results = commands.add_parser("results", help="the latest drift report and gate decision of a domain, from the Dagster webserver's GraphQL API")
    results.add_argument("domain")
    results.add_argument("--url", default="http://127.0.0.1:3000", help="the Dagster webserver (default %(default)s)")
    table = commands.add_parser("table", help="the Delta tables of trusted/, current/, quarantine/: history, time travel, maintenance, migration")
    table.add_argument("action", choices=["history", "read", "maintain", "migrate"])
    table.add_argument("tables", nargs="*", help="table names of the registry (migrate: default every table)")
    table.add_argument("--zone", choices=["current", "trusted", "quarantine"], default="current")
    table.add_argument("--version", type=int, default=None, help="read: the version to read (default: the latest)")
    table.add_argument("--output", default=None, help="read: write the rows to this .parquet or .csv file (default: print a summary)")
    table.add_argument("--include-deleted", action="store_true", help="read current: keep soft-deleted rows and _op")
    table.add_argument("--limit", type=int, default=20, help="history: how many versions; read: how many rows to print")
    table.add_argument("--retention-hours", type=int, default=None, help="maintain: versions younger than this stay readable")
    table.add_argument("--dry-run", action="store_true", help="maintain: list what vacuum would delete")
    table.add_argument("--lake", default=None, help="s3://bucket/prefix or a folder")
    args = parser.parse_args(argv)
    try:
        if args.command == "table":
            return _table(args)
        if args.command == "results":
            import json

            from .results_api import ResultsApiError, latest_results

            try:
                print(json.dumps(latest_results(args.url, args.domain), indent=2))
            except ResultsApiError as exc:
                print(f"smartstream: {exc}", file=sys.stderr)
                return 2
            return 0
        if args.command == "iam-policy":
            from .iam import policy_json, registry_policy

            sys.stdout.write(policy_json(registry_policy(args.bucket, args.prefix)))
            return 0
        if args.command == "endpoint":
            return _endpoint_test(args)
        return _produce(args)
    except (LakeError, RegistryError, ValueError) as exc:
        print(f"smartstream: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _produce(args) -> int:
    from .producers import produce  # pandas: only when producing

    tables = load_tables()
    if args.table not in tables:
        raise ValueError(f"unknown table {args.table!r}; the registry has: {', '.join(tables)}")
    if args.files < 0 or args.events <= 0 or args.interval < 0:
        raise ValueError("--files must be >= 0, --events > 0 and --interval >= 0")
    lake = lake_from_url(args.lake)
    seed = args.seed if args.seed is not None else int(time.time())
    if args.table == "co2":
        from .producers import Co2Drift, produce_readings

        drift = Co2Drift.parse(args.drift)
        produce_readings(lake, tables["co2"], weeks=args.weeks, seed=seed, drift=drift)
        return 0
    if args.table == "vitals":
        return _produce_vitals(args, lake, tables["vitals"], seed)
    if args.table == "reviews":
        from .producers import ReviewsDrift, produce_reviews

        drift = ReviewsDrift.parse(args.drift)
        produce_reviews(lake, tables["reviews"], hours=args.hours, seed=seed, drift=drift)
        return 0
    drift = parse_drift(args.drift)
    rate = args.events / args.interval if args.interval else float("inf")
    print(
        f"producing {args.files or 'unlimited'} files of {args.events} changes every {args.interval:g}s "
        f"(~{rate:,.0f} changes/s) into {lake.describe(tables[args.table].raw_prefix)}"
        + (f" with drift {drift}" if drift else "")
    )
    produce(lake, tables[args.table], files=args.files, interval=args.interval, events=args.events, seed=seed, drift=drift, compress=args.gzip)
    return 0


def _produce_vitals(args, lake, spec, seed: int) -> int:
    """The seed's producer: validate the rows' columns, then one micro-batch object every
    --batch-seconds until the rows run out, --batches, or Ctrl-C (after the current batch)."""
    from datetime import datetime, timedelta, timezone

    from .producers.vitals import LIVE_PATIENTS, ProducerError, population, prepare_rows, read_rows, stream_vitals

    if args.batches < 0:
        raise ValueError("--batches must be >= 0")
    try:
        if args.from_csv:
            rows = read_rows(args.from_csv)
            source = args.from_csv
        else:  # the sample population, admitted over the last day
            start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
            rows = prepare_rows(population(LIVE_PATIENTS, seed=seed, start=start, id_prefix="S", labelled=False), source="the sample")
            source = f"a generated population of {LIVE_PATIENTS} patients (seed {seed})"
        print(f"streaming {len(rows)} messages from {source}: {args.rate:g}/s in batches every {args.batch_seconds:g}s "
              f"into {lake.describe(spec.raw_prefix)} (Ctrl-C stops after the current batch)", flush=True)
        stream_vitals(lake, spec, rows, rate=args.rate, batch_seconds=args.batch_seconds, batches=args.batches,
                      log=lambda line: print(line, flush=True))  # fmt: skip
    except ProducerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _endpoint_test(args) -> int:
    """POST a sample payload, built from the latest features the scoring runs score (each
    series' newest row, ``Domain.select_rows``), to ``<url>/invocations`` and print the
    answers; exit 1 with the reason when nothing answers or the answer is wrong."""
    import json
    import urllib.error
    import urllib.request

    from .domains import all_domains
    from .keys import features_key

    domains = {d.name: d for d in all_domains()}
    if args.domain not in domains:
        raise ValueError(f"unknown domain {args.domain!r}; the registry has: {', '.join(domains)}")
    domain = domains[args.domain]
    lake = lake_from_url(args.lake)
    key = features_key(domain)
    if not lake.exists(key):
        raise ValueError(f"no features at {lake.describe(key)}: materialise {domain.name}/features first (make demo)")
    frame = lake.read_parquet(key).to_pandas()
    rows = frame if domain.select_rows is None else domain.select_rows(frame)
    waiting = rows[rows[list(domain.targets)].isna().any(axis=1)]  # what a forecast is for: no label yet
    rows = (waiting if len(waiting) else rows).tail(5)
    # a text model answers raw text: its id and text are sent, the embedding is its own
    sent = [domain.id_column, domain.text_input.text_column] if domain.text_input else domain.features
    payload = json.loads(rows[sent].to_json(orient="split", index=False, date_format="iso"))
    body = json.dumps({"dataframe_split": payload}).encode()
    url = args.url.rstrip("/") + "/invocations"
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as response:
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        print(f"smartstream: {url} answered HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}", file=sys.stderr)
        return 1
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"smartstream: nothing answers at {url} ({reason}); start it with: make serve MODEL={domain.registered_model}", file=sys.stderr)
        return 1
    predictions = answer.get("predictions") if isinstance(answer, dict) else None
    if not isinstance(predictions, list) or len(predictions) != len(rows):
        print(f"smartstream: {url} answered {str(answer)[:300]!r}; expected {len(rows)} predictions", file=sys.stderr)
        return 1
    print(f"{url}: {len(rows)} rows of {lake.describe(key)} sent")
    for ident, value in zip(rows[domain.id_column], predictions):
        if isinstance(value, dict):  # one record per row (a text model: id and one value per output)
            value = ", ".join(f"{k} {v:.3f}" for k, v in value.items() if k != domain.id_column and isinstance(v, float))
        shown = f"{value:.3f}" if isinstance(value, float) else str(value)
        print(f"{ident}: predicted {domain.prediction_label or domain.target} {shown}")
    return 0


def parse_drift(text: str):
    """``age=+8,city=Pune,tier=-1,share=0.8`` -> Drift; empty -> None."""
    from .producers import Drift

    if not text.strip():
        return None
    fields = {"age": ("age_shift", int), "city": ("city", str), "tier": ("payment_tier_shift", int), "share": ("share", float)}
    kwargs = {}
    for part in text.split(","):
        name, _, value = part.partition("=")
        if name.strip() not in fields or not value:
            raise ValueError(f"--drift: cannot read {part!r}; use age=+N, city=NAME, tier=+-N, share=0..1")
        attr, kind = fields[name.strip()]
        try:
            kwargs[attr] = kind(value.strip())
        except ValueError:
            raise ValueError(f"--drift: {name}={value!r} is not a {kind.__name__}") from None
    return Drift(**kwargs)




def _table(args) -> int:
    """``smartstream table ...``: one table's Delta log, a version of it, its maintenance,
    or the conversion of the Parquet layout."""
    import json

    from . import delta

    tables = load_tables()
    unknown = [t for t in args.tables if t not in tables]
    if unknown:
        raise ValueError(f"unknown table {unknown[0]!r}; the registry has: {', '.join(tables)}")
    lake = lake_from_url(args.lake)
    if args.action == "migrate":
        from .migrate import migrate_table

        for name in args.tables or list(tables):
            done = migrate_table(lake, tables[name])
            if done is None:
                print(f"{name}: nothing in the Parquet layout")
            else:
                print(
                    f"{name}: {len(done.days)} trusted days ({done.trusted_rows} changes, {done.quarantined_rows} quarantined), "
                    f"state of {done.state_rows} keys -> current v{done.current_version} with {done.current_rows} rows; "
                    f"{done.deleted_objects} old objects removed"
                )
        return 0
    if len(args.tables) != 1:
        raise ValueError(f"table {args.action} takes exactly one table name")
    name = args.tables[0]
    path = {"current": delta.current_table, "trusted": delta.trusted_table, "quarantine": delta.quarantine_table}[args.zone](name)
    if delta.open_table(lake, path) is None:
        raise ValueError(f"no Delta table at {lake.describe(path)}")
    if args.action == "history":
        for entry in delta.history(lake, path, args.limit):
            metrics = entry.get("operationMetrics") or {}
            shown = {k: metrics[k] for k in sorted(metrics) if k.startswith("num_") and metrics[k]}
            when = entry.get("timestamp")
            days = (entry.get("smartstream.days") or "") if isinstance(entry, dict) else ""
            print(f"v{entry.get('version')}\t{when}\t{entry.get('operation')}\t{json.dumps(shown)}" + (f"\tdays {days}" if days else ""))
        return 0
    if args.action == "maintain":
        from .assets.maintenance import default_retention_hours

        hours = args.retention_hours if args.retention_hours is not None else default_retention_hours()
        order = list(tables[name].primary_key) if args.zone == "current" else None
        done = delta.maintain(lake, path, z_order=order, retention_hours=hours, dry_run=args.dry_run, keys=tables[name].primary_key)
        print(
            f"{lake.describe(path)}: v{done.version}; {done.optimized.get('numFilesRemoved', 0)} files rewritten into "
            f"{done.optimized.get('numFilesAdded', 0)}; {len(done.vacuumed)} files "
            + ("vacuum would delete" if args.dry_run else "vacuumed")
            + f" (retention {hours} h)"
        )
        return 0
    # read
    if args.zone == "current":
        rows = delta.read_current(lake, name, version=args.version, include_deleted=args.include_deleted)
    elif args.zone == "trusted":
        rows = delta.read_trusted(lake, name, version=args.version)
    else:
        rows = delta.read_quarantine(lake, name, version=args.version)
    version = args.version if args.version is not None else delta.table_version(lake, path)
    if args.output:
        if args.output.endswith(".csv"):
            import pyarrow.csv as pacsv

            pacsv.write_csv(rows, args.output)
        else:
            import pyarrow.parquet as pq

            pq.write_table(rows, args.output)
        print(f"{lake.describe(path)} v{version}: {rows.num_rows} rows written to {args.output}")
        return 0
    print(f"{lake.describe(path)} v{version}: {rows.num_rows} rows")
    print(rows.slice(0, args.limit).to_pandas().to_string(index=False))
    return 0

if __name__ == "__main__":
    sys.exit(main())
