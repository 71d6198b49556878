"""The least-privilege IAM policy of the code location (``iam.py``, ``deploy/iam-policy.json``):
it names exactly the registry's raw prefixes, read-only, and the zones the code writes."""

import json
import subprocess
import sys
from pathlib import Path

from smartstream_assets.iam import OWNED_ZONES, lake_policy, policy_json, registry_policy
from smartstream_assets.tables import load_tables

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "deploy" / "iam-policy.json"


def _statements(policy: dict) -> dict:
    return {s["Sid"]: s for s in policy["Statement"]}


def test_the_shipped_policy_is_the_registry_s():
    tables = load_tables(extra="")
    assert SHIPPED.read_text() == policy_json(registry_policy("smartstream-lake", "lake", tables)), (
        "deploy/iam-policy.json is stale: smartstream iam-policy --bucket smartstream-lake --prefix lake > deploy/iam-policy.json"
    )


def test_it_reads_exactly_the_raw_prefixes_and_writes_only_the_owned_zones():
    tables = load_tables(extra="")
    policy = json.loads(SHIPPED.read_text())
    by_sid = _statements(policy)
    raw = {f"arn:aws:s3:::smartstream-lake/lake/{spec.raw_prefix}*" for spec in tables.values()}
    assert set(by_sid["ReadRawPrefixes"]["Resource"]) == raw
    assert by_sid["ReadRawPrefixes"]["Action"] == ["s3:GetObject"]  # raw is never written nor deleted
    writes = [s for s in policy["Statement"] if {"s3:PutObject", "s3:DeleteObject"} & set(s["Action"])]
    assert [s["Sid"] for s in writes] == ["ReadWriteOwnedZones"]
    assert set(writes[0]["Resource"]) == {f"arn:aws:s3:::smartstream-lake/lake/{z}*" for z in OWNED_ZONES}
    for spec in tables.values():  # no owned zone reaches into a raw prefix, nor the other way round
        assert not any(spec.raw_prefix.startswith(z) or z.startswith(spec.raw_prefix) for z in OWNED_ZONES)
    listed = set(by_sid["ListRawPrefixesAndOwnedZones"]["Condition"]["StringLike"]["s3:prefix"])
    assert listed == {f"lake/{spec.raw_prefix}*" for spec in tables.values()} | {f"lake/{z}*" for z in OWNED_ZONES}
    assert all(a.startswith("s3:") for s in policy["Statement"] for a in s["Action"])
    assert not any("*" == r or r.endswith(":::*") for s in policy["Statement"] for r in s["Resource"])


def test_a_lake_at_the_bucket_root_and_a_user_table():
    policy = lake_policy("b", "", ["raw/src/people/"])
    read = _statements(policy)["ReadRawPrefixes"]["Resource"]
    assert read == ["arn:aws:s3:::b/raw/src/people/*"]


def test_the_cli_prints_the_policy(tmp_path):
    import os

    env = {k: v for k, v in os.environ.items() if k != "SMARTSTREAM_TABLES"}
    out = subprocess.run([str(Path(sys.executable).with_name("smartstream")), "iam-policy", "--bucket", "smartstream-lake", "--prefix", "lake/"],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout == SHIPPED.read_text()
