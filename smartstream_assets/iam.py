"""A least-privilege IAM policy for the code location's role on the lake bucket.

    smartstream iam-policy --bucket my-lake --prefix lake > policy.json

The code location reads the raw prefixes of the table registry (never writes them: raw
is the producers' zone) and reads, writes and deletes the zones it owns; nothing else of
the bucket. ``deploy/iam-policy.json`` is this policy for bucket ``smartstream-lake`` and
prefix ``lake`` with the built-in registry (a test keeps it equal to the generator, and
checks that a whole demo writes nowhere else).

Not covered: the producers' role (put objects under the raw prefixes), MLflow's artifact
store (the MLflow server's own role when it proxies artifacts), KMS keys of an encrypted
bucket (add ``kms:Decrypt`` / ``kms:GenerateDataKey`` on the key), SNS for alerts
(``sns:Publish`` on the topic).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# Every zone the code location writes, each a top-level folder of the lake (keys.py spells
# the keys under them); embeddings/ is the reviews' sentence-vector cache.
OWNED_ZONES = ("trusted/", "current/", "quarantine/", "_state/", "features/", "predictions/", "reports/", "forecasts/", "embeddings/")


def lake_policy(bucket: str, prefix: str, raw_prefixes: Iterable[str]) -> dict:
    """The policy document: list and read the raw prefixes; list, read, write and delete the owned zones."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    raw = sorted({base + p for p in raw_prefixes})
    zones = [base + z for z in OWNED_ZONES]
    bucket_arn = f"arn:aws:s3:::{bucket}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "ListRawPrefixesAndOwnedZones",
                "Effect": "Allow",
                "Action": ["s3:ListBucket"],
                "Resource": [bucket_arn],
                # the sensors list below the prefixes; listing a dated folder needs its parent's name too
                "Condition": {"StringLike": {"s3:prefix": [f"{p}*" for p in [*raw, *zones]]}},
            },
            {
                "Sid": "ReadRawPrefixes",
                "Effect": "Allow",
                "Action": ["s3:GetObject"],
                "Resource": [f"{bucket_arn}/{p}*" for p in raw],
            },
            {
                "Sid": "ReadWriteOwnedZones",
                "Effect": "Allow",
                # PutObject covers multipart uploads and the conditional PUTs of the states
                "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                "Resource": [f"{bucket_arn}/{z}*" for z in zones],
            },
        ],
    }


def registry_policy(bucket: str, prefix: str, tables=None) -> dict:
    """``lake_policy`` for the raw prefixes of the table registry (``tables``: a loaded one)."""
    from .tables import load_tables

    tables = load_tables() if tables is None else tables
    return lake_policy(bucket, prefix, [spec.raw_prefix for spec in tables.values()])


def policy_json(policy: dict) -> str:
    return json.dumps(policy, indent=2) + "\n"
