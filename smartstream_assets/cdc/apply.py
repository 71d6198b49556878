"""Apply a change log to the current state of a table.

The state is the last change per primary key, deletes included (tombstones), so
that changes can be applied in any number of steps and in any arrival order:
a late update older than a delete must not resurrect the row. Order is commit
time, then source key, then line; replaying a change that is already applied is
a no-op because it sorts next to itself and the last one wins.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ORDER_COLUMNS = ("_commit_ts", "_source_key", "_source_line")


def apply_changes(state: pa.Table | None, changes: pa.Table, primary_key: tuple[str, ...] | list[str]) -> pa.Table:
    """New state: for every key, the latest of its changes in ``state`` and ``changes``."""
    combined = changes if state is None else pa.concat_tables([state, changes.select(state.column_names)])
    n = combined.num_rows
    if n == 0:
        return combined
    sort_keys = [(k, "ascending") for k in primary_key] + [(c, "ascending") for c in ORDER_COLUMNS]
    combined = combined.take(pc.sort_indices(combined, sort_keys=sort_keys))
    is_last = np.ones(n, bool)
    if n > 1:
        differs = np.zeros(n - 1, bool)
        for k in primary_key:
            col = combined.column(k)
            differs |= pc.not_equal(col.slice(1), col.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        is_last[:-1] = differs
    return combined.filter(pa.array(is_last))


def current_rows(state: pa.Table) -> pa.Table:
    """The rows that exist now: the state without its tombstones and without ``_op``."""
    live = state.filter(pc.not_equal(state.column("_op"), "delete"))
    return live.drop_columns(["_op"])
