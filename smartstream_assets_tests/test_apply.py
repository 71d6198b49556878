"""Change application: last write wins per key in commit order; deletes remove; replays are no-ops."""

import random
from datetime import timedelta

import pyarrow as pa

from smartstream_assets.cdc import apply_changes, current_rows, parse_object

from .helpers import T0, people_spec, rows

SPEC = people_spec(timestamp_column="ts")


def changes(key, *lines):
    """Parse DMS CDC lines 'op,minute,id,name' into the trusted change log."""
    text = ""
    for line in lines:
        op, minute, ident, name = line.split(",")
        ts = (T0 + timedelta(minutes=int(minute))).strftime("%Y-%m-%d %H:%M:%S")
        text += f"{op},{ts},{ident},{name},1,t,,\n"
    parsed = parse_object(SPEC, key, text.encode(), T0)
    assert parsed.quarantine.num_rows == 0
    return parsed.changes


def current(*batches):
    state = None
    for batch in batches:
        state = apply_changes(state, batch, SPEC.primary_key)
    return sorted(rows(current_rows(state), "id", "name"))


def test_last_write_wins_and_delete_removes_the_row():
    batch = changes("a.csv", "I,1,1,ann", "I,2,2,bob", "U,3,1,ann2", "D,4,2,bob")
    assert current(batch) == [(1, "ann2")]


def test_files_applied_out_of_order_give_the_same_state():
    early = changes("raw/2026/03/01/a.csv", "I,1,1,ann", "I,1,2,bob")
    late = changes("raw/2026/03/02/b.csv", "U,5,1,ann-late", "D,6,2,bob")
    assert current(late, early) == current(early, late) == [(1, "ann-late")]


def test_a_late_update_older_than_the_delete_does_not_resurrect_the_row():
    delete = changes("b.csv", "D,9,1,ann")
    old_update = changes("a.csv", "U,5,1,ann-old")
    assert current(changes("0.csv", "I,1,1,ann"), delete, old_update) == []


def test_reinsert_after_delete_brings_the_key_back():
    assert current(changes("a.csv", "I,1,1,ann", "D,2,1,ann", "I,3,1,ann-again")) == [(1, "ann-again")]


def test_replaying_the_same_object_twice_changes_nothing():
    batch = changes("a.csv", "I,1,1,ann", "U,2,1,ann2", "I,2,3,cy")
    once = apply_changes(None, batch, SPEC.primary_key)
    twice = apply_changes(once, batch, SPEC.primary_key)
    assert twice.equals(once)


def test_equal_commit_times_are_ordered_by_source_key_then_line():
    # Debezium snapshots and DMS batches share commit times.
    a = changes("raw/a.csv", "I,1,1,from-a-line1", "U,1,1,from-a-line2")
    b = changes("raw/b.csv", "U,1,1,from-b")
    assert current(b, a) == [(1, "from-b")]  # b sorts after a
    assert current(changes("raw/c.csv", "U,1,1,x", "U,1,1,y")) == [(1, "y")]


def test_random_interleavings_match_a_sequential_reference():
    rng = random.Random(3)
    events, alive = [], {}
    for minute in range(300):
        ident = rng.randrange(20)
        if ident in alive and rng.random() < 0.3:
            events.append(f"D,{minute},{ident},x")
            alive.pop(ident)
        else:
            name = f"n{minute}"
            events.append(f"{'U' if ident in alive else 'I'},{minute},{ident},{name}")
            alive[ident] = name
    batches = [changes(f"f{i}.csv", *events[i : i + 37]) for i in range(0, len(events), 37)]
    rng.shuffle(batches)
    assert current(*batches) == sorted(alive.items())


def test_composite_primary_keys_are_compared_as_a_whole():
    state = apply_changes(
        None,
        pa.table(
            {
                "_op": ["insert", "insert", "update"],
                "_commit_ts": pa.array([T0, T0, T0 + timedelta(1)], pa.timestamp("us", tz="UTC")),
                "_source_key": ["k", "k", "k"],
                "_source_line": [1, 2, 3],
                "a": [1, 1, 1],
                "b": ["x", "y", "y"],
                "v": [10, 20, 30],
            }
        ),
        ("a", "b"),
    )
    assert sorted(rows(state, "a", "b", "v")) == [(1, "x", 10), (1, "y", 30)]


def test_winning_rows_takes_each_keys_last_change_in_key_order_on_every_path():
    """The integer fast path (pandas), the general path (Arrow group-by) and a composite
    key agree with a brute-force reference, with ties on time and source and null times
    (nulls sort last)."""
    import numpy as np

    from smartstream_assets.cdc.apply import winning_rows

    rng = np.random.default_rng(5)
    n = 5000
    key = rng.integers(-50, 400, n)
    ts = rng.integers(0, 30, n).astype(object)
    ts[rng.random(n) < 0.02] = None
    rank = rng.integers(0, 4, n)
    line = rng.permutation(n)  # unique per (source, line), as parsing makes them
    top = np.iinfo(np.int64).max
    order = [(top if t is None else t, r, s) for t, r, s in zip(ts, rank, line)]

    def reference(groups):
        best = {}
        for i, g in enumerate(groups):
            if g not in best or order[i] > order[best[g]]:
                best[g] = i
        return [best[g] for g in sorted(best)]

    commit = pa.array(list(ts), pa.int64())
    fast = winning_rows(pa.table({"k": key}), commit, rank, line)
    general = winning_rows(pa.table({"k": pa.array(key.astype(str))}), commit, rank, line)
    assert fast.tolist() == reference(key.tolist())
    assert general.tolist() == reference(key.astype(str).tolist())
    pair = (key % 7, key.astype(str))
    composite = winning_rows(pa.table({"a": pair[0], "b": pair[1]}), commit, rank, line)
    assert composite.tolist() == reference(list(zip(*(p.tolist() for p in pair))))
    # keys of a small type (slots past its range), uint64 keys near the top, sparse keys (pandas)
    for typed in (key.astype(np.int16) * 80, key.astype(np.uint64) + np.uint64(2**64 - 1000), key * 10**12):
        assert winning_rows(pa.table({"k": typed}), commit, rank, line).tolist() == reference(typed.tolist())
    # lines that do not fit the one tie-break key (negative here) take three sort keys
    order = [(t, r, s - 2500) for t, r, s in order]
    assert winning_rows(pa.table({"k": key}), commit, rank, line - 2500).tolist() == reference(key.tolist())
