"""The local lake keeps S3's listing semantics (the S3 side is in test_s3.py)."""

import os
import random

import pytest

from smartstream_assets.lake import LakeError, LocalLake, lake_from_url


@pytest.fixture
def lake(tmp_path):
    return LocalLake(tmp_path / "lake")


def random_keys(rng, n):
    parts = ["raw", "a", "b", "2026", "03", "01", "02", "x-y", "LOAD", "z"]
    keys = set()
    while len(keys) < n:
        depth = rng.randint(1, 5)
        keys.add("/".join(rng.choice(parts) for _ in range(depth)) + f"/{rng.randint(0, 99)}.csv")
    # a key that is also a folder's name is impossible on a file system; keep files only
    return sorted(k for k in keys if not any(o.startswith(k + "/") for o in keys))


def test_listing_after_a_key_equals_filtering_the_full_listing(lake):
    rng = random.Random(7)
    keys = random_keys(rng, 300)
    for k in keys:
        lake.write_bytes(k, b"x")
    everything = [o.key for o in lake.list("")]
    assert everything == sorted(keys, key=lambda k: k.encode())
    for start_after in rng.sample(keys, 40) + ["", "a", "raw/", "raw/a/2026", "zzz"]:
        for prefix in ("", "raw/", "raw/a", "a/b/"):
            got = [o.key for o in lake.list(prefix, start_after=start_after or None)]
            want = [k for k in everything if k.startswith(prefix) and (not start_after or k > start_after)]
            assert got == want, (prefix, start_after)


def test_listing_after_a_key_does_not_read_folders_that_sort_before_it(lake, monkeypatch):
    for day in range(1, 29):
        lake.write_bytes(f"raw/t/2026/02/{day:02d}/f.csv", b"x")
    lake.write_bytes("raw/t/2026/03/01/f.csv", b"x")
    visited = []
    real_walk = os.walk

    def walk(top, *args, **kwargs):
        for dirpath, dirnames, filenames in real_walk(top, *args, **kwargs):
            visited.append(dirpath)
            yield dirpath, dirnames, filenames

    monkeypatch.setattr(os, "walk", walk)
    got = [o.key for o in lake.list("raw/t/", start_after="raw/t/2026/02/28/f.csv")]
    assert got == ["raw/t/2026/03/01/f.csv"]
    february = sorted(os.path.relpath(v, lake.root) for v in visited if "/2026/02" in v)
    assert february == ["raw/t/2026/02", "raw/t/2026/02/28"]  # not the 27 days before


def test_a_write_replaces_the_object_and_leaves_no_temporary_file(lake):
    lake.write_bytes("features/t/data.parquet", b"old")
    lake.write_bytes("features/t/data.parquet", b"new")
    assert lake.read_bytes("features/t/data.parquet") == b"new"
    assert [o.key for o in lake.list("features/")] == ["features/t/data.parquet"]
    assert os.listdir(lake.root / "features" / "t") == ["data.parquet"]


def test_reading_a_missing_key_names_it(lake):
    with pytest.raises(LakeError, match="raw/nope.csv"):
        lake.read_bytes("raw/nope.csv")


def test_a_key_cannot_escape_the_lake_root(lake):
    with pytest.raises(LakeError, match="escapes"):
        lake.write_bytes("../outside.csv", b"x")


def test_lake_url_picks_the_backend(tmp_path, monkeypatch):
    monkeypatch.setenv("SMARTSTREAM_LAKE", str(tmp_path / "from-env"))
    assert lake_from_url().url == str((tmp_path / "from-env").resolve())
    s3 = lake_from_url("s3://bucket/some/prefix")
    assert s3.url == "s3://bucket/some/prefix/"
    with pytest.raises(LakeError, match="names no bucket"):
        lake_from_url("s3:///prefix")


def test_a_conditional_read_on_a_lake_whose_folder_does_not_exist_yet_finds_nothing(tmp_path):
    lake = LocalLake(tmp_path / "not-yet" / "lake")
    assert lake.read_versioned("embeddings/x.parquet") is None
    lake.write_bytes("a/b.bin", b"1", if_absent=True)
    assert lake.read_versioned("a/b.bin")[0] == b"1"
