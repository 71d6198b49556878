"""The table registry takes values only of the exact type: a mistyped setting, a
table declared twice or two tables reading the same objects fail loudly, naming the
file, the table and the key, instead of silently changing what is ingested."""

import textwrap
from datetime import date

import pytest

from smartstream_assets.tables import BUILTIN_REGISTRY, RegistryError, _read_registry, load_tables

BASE = """\
    raw_prefix: raw/shop/orders/
    format: dms_csv
    primary_key: [order_id]
    columns: {order_id: int64, total: float64}
"""


def registry(tmp_path, text, name="tables.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def orders(tmp_path, extra_lines="", name="tables.yaml"):
    """A one-table registry: the orders table plus ``extra_lines`` (indented as table keys)."""
    return registry(tmp_path, "tables:\n  orders:\n" + BASE + extra_lines, name)


def test_a_well_typed_registry_reads_every_setting(tmp_path):
    path = orders(
        tmp_path,
        "    start_date: 2025-01-31\n    allow_nonfinite: true\n"
        "    dms: {timestamp_column: ts, add_column_name: true, include_op_for_full_load: false}\n",
    )
    spec = load_tables(extra=path)["orders"]
    assert (spec.dms.timestamp_column, spec.dms.add_column_name, spec.dms.include_op_for_full_load) == ("ts", True, False)
    assert spec.allow_nonfinite is True and spec.start_date == date(2025, 1, 31)


@pytest.mark.parametrize(
    "lines, key",
    [
        ('    dms: {add_column_name: "false"}\n', "dms.add_column_name"),  # used to read as True
        ("    dms: {add_column_name: 'true'}\n", "dms.add_column_name"),
        ("    dms: {add_column_name: 0}\n", "dms.add_column_name"),
        ('    dms: {include_op_for_full_load: "no"}\n', "dms.include_op_for_full_load"),
        ("    dms: {include_op_for_full_load: [true]}\n", "dms.include_op_for_full_load"),
        ('    allow_nonfinite: "false"\n', "allow_nonfinite"),
        ("    allow_nonfinite: 1\n", "allow_nonfinite"),
    ],
    ids=[
        "add_column_name_quoted_false",
        "add_column_name_quoted_true",
        "add_column_name_zero",
        "include_op_quoted_no",
        "include_op_list",
        "allow_nonfinite_quoted_false",
        "allow_nonfinite_one",
    ],
)
def test_a_boolean_setting_must_be_a_yaml_boolean(tmp_path, lines, key):
    path = orders(tmp_path, lines)
    with pytest.raises(RegistryError, match="must be true or false") as err:
        load_tables(extra=path)
    assert str(path) in str(err.value) and "'orders'" in str(err.value) and key in str(err.value)


def test_a_quoted_false_no_longer_turns_a_setting_on(tmp_path):
    with pytest.raises(RegistryError):
        load_tables(extra=orders(tmp_path, '    dms: {add_column_name: "false"}\n'))
    spec = load_tables(extra=orders(tmp_path, "    dms: {add_column_name: false}\n", "ok.yaml"))["orders"]
    assert spec.dms.add_column_name is False


HEAD = "tables:\n  t:\n    raw_prefix: raw/a/\n    format: {fmt}\n    primary_key: {pk}\n    columns: {cols}\n"
WRONG_TYPES = {
    "raw_prefix_number": ("tables:\n  t:\n    raw_prefix: 5\n    format: csv\n    primary_key: [id]\n    columns: {id: int64}\n", "raw_prefix"),
    "raw_prefix_list": ("tables:\n  t:\n    raw_prefix: [raw/a/]\n    format: csv\n    primary_key: [id]\n    columns: {id: int64}\n", "raw_prefix"),
    "format_list": (HEAD.format(fmt="[csv]", pk="[id]", cols="{id: int64}"), "format"),
    "format_number": (HEAD.format(fmt="7", pk="[id]", cols="{id: int64}"), "format"),
    "column_type_list": (HEAD.format(fmt="csv", pk="[id]", cols="{id: [int64]}"), "column 'id'"),
    "column_type_number": (HEAD.format(fmt="csv", pk="[id]", cols="{id: 64}"), "column 'id'"),
    "primary_key_nested_list": (HEAD.format(fmt="csv", pk="[[id]]", cols="{id: int64}"), "primary_key"),
    "primary_key_twice": (HEAD.format(fmt="csv", pk="[id, id]", cols="{id: int64}"), "primary_key"),
    "timestamp_column_number": (HEAD.format(fmt="dms_csv", pk="[id]", cols="{id: int64}") + "    dms: {timestamp_column: 12}\n", "dms.timestamp_column"),
    "timestamp_column_list": (HEAD.format(fmt="dms_csv", pk="[id]", cols="{id: int64}") + "    dms: {timestamp_column: [ts]}\n", "dms.timestamp_column"),
    "dms_list": (HEAD.format(fmt="dms_csv", pk="[id]", cols="{id: int64}") + "    dms: [add_column_name]\n", "dms"),
    "start_date_number": (HEAD.format(fmt="csv", pk="[id]", cols="{id: int64}") + "    start_date: 5\n", "start_date"),
    "start_date_with_time": (HEAD.format(fmt="csv", pk="[id]", cols="{id: int64}") + "    start_date: 2025-01-31 10:00:00\n", "start_date"),
    "start_date_not_iso": (HEAD.format(fmt="csv", pk="[id]", cols="{id: int64}") + "    start_date: 31/01/2025\n", "start_date"),
}


@pytest.mark.parametrize("text, key", list(WRONG_TYPES.values()), ids=list(WRONG_TYPES))
def test_a_string_or_date_setting_of_another_type_is_refused_naming_file_table_and_key(tmp_path, text, key):
    path = registry(tmp_path, text, "mine.yaml")
    with pytest.raises(RegistryError) as err:
        _read_registry(path)
    message = str(err.value)
    assert str(path) in message and "table 't'" in message and key in message


def test_start_date_as_a_quoted_string_is_still_read_as_a_date(tmp_path):
    spec = load_tables(extra=orders(tmp_path, '    start_date: "2025-01-31"\n'))["orders"]
    assert spec.start_date == date(2025, 1, 31)


def test_a_table_declared_twice_in_one_file_is_refused(tmp_path):
    # PyYAML alone would keep only the second 'orders' and forget raw/shop/orders/
    path = registry(
        tmp_path,
        """\
        tables:
          orders:
            raw_prefix: raw/shop/orders/
            format: csv
            primary_key: [id]
            columns: {id: int64}
          orders:
            raw_prefix: raw/shop/orders_v2/
            format: csv
            primary_key: [id]
            columns: {id: int64}
        """,
    )
    with pytest.raises(RegistryError, match=r"'orders' is declared twice .*lines 2 and 7") as err:
        load_tables(extra=path)
    assert str(path) in str(err.value)


def test_a_column_or_setting_given_twice_in_one_table_is_refused(tmp_path):
    path = registry(
        tmp_path,
        """\
        tables:
          orders:
            raw_prefix: raw/shop/orders/
            format: csv
            primary_key: [id]
            columns:
              id: int64
              id: string
        """,
    )
    with pytest.raises(RegistryError, match=r"'id' is declared twice .*lines 7 and 8"):
        _read_registry(path)
    path = orders(tmp_path, "    format: jsonl\n", "again.yaml")
    with pytest.raises(RegistryError, match=r"'format' is declared twice"):
        _read_registry(path)


def test_yaml_merge_keys_may_still_be_overridden(tmp_path):
    path = registry(
        tmp_path,
        """\
        defaults: &defaults
          format: csv
          primary_key: [id]
          columns: {id: int64}
        tables:
          a:
            <<: *defaults
            raw_prefix: raw/x/a/
          b:
            <<: *defaults
            raw_prefix: raw/x/b/
            format: jsonl
        """,
    )
    tables = _read_registry(path)
    assert (tables["a"].format, tables["b"].format) == ("csv", "jsonl")


def test_a_user_table_named_like_a_builtin_one_is_still_refused(tmp_path):
    path = registry(tmp_path, "tables:\n  employees:\n" + BASE)
    with pytest.raises(RegistryError, match="'employees' is already defined by the built-in registry"):
        load_tables(extra=path)


@pytest.mark.parametrize(
    "first, second",
    [
        ("raw/shop/orders/", "raw/shop/orders/"),  # equal
        ("raw/shop/", "raw/shop/orders/"),  # one contains the other
        ("raw/shop/orders/2026/", "raw/shop/orders"),  # same, other order; a slash is added
    ],
)
def test_two_tables_of_one_file_with_overlapping_raw_prefixes_are_refused(tmp_path, first, second):
    path = registry(
        tmp_path,
        f"""\
        tables:
          orders:
            raw_prefix: {first}
            format: csv
            primary_key: [id]
            columns: {{id: int64}}
          returns:
            raw_prefix: {second}
            format: csv
            primary_key: [id]
            columns: {{id: int64}}
        """,
    )
    with pytest.raises(RegistryError, match="raw prefixes overlap") as err:
        _read_registry(path)
    message = str(err.value)
    assert str(path) in message and "'orders'" in message and "'returns'" in message
    assert first.rstrip("/") + "/" in message and second.rstrip("/") + "/" in message


def test_a_user_table_whose_raw_prefix_overlaps_a_builtin_one_is_refused(tmp_path):
    builtin = load_tables(extra="")["employees"].raw_prefix  # raw/hr/employees/
    for prefix in (builtin, "raw/hr/", builtin + "archive/"):
        path = registry(tmp_path, f"tables:\n  staff:\n{BASE.replace('raw/shop/orders/', prefix)}")
        with pytest.raises(RegistryError, match="raw prefixes overlap") as err:
            load_tables(extra=path)
        message = str(err.value)
        assert str(path) in message and str(BUILTIN_REGISTRY) in message
        assert "'staff'" in message and "'employees'" in message and prefix in message and builtin in message


def test_prefixes_that_only_share_leading_characters_do_not_overlap(tmp_path):
    path = registry(
        tmp_path,
        """\
        tables:
          orders:
            raw_prefix: raw/shop/orders
            format: csv
            primary_key: [id]
            columns: {id: int64}
          orders_archive:
            raw_prefix: raw/shop/orders_archive/
            format: csv
            primary_key: [id]
            columns: {id: int64}
        """,
    )
    tables = load_tables(extra=path)
    assert tables["orders"].raw_prefix == "raw/shop/orders/" and "orders_archive" in tables


def test_the_builtin_registry_passes_the_strict_rules():
    assert "employees" in _read_registry(BUILTIN_REGISTRY)


def test_an_asset_label_prefixes_the_tables_asset_keys_and_must_be_a_plain_name(tmp_path, monkeypatch):
    from smartstream_assets.keys import current_asset_key, current_op_name, trusted_asset_key

    path = orders(tmp_path, "    asset_label: live\n")
    assert load_tables(extra=path)["orders"].asset_label == "live"
    monkeypatch.setenv("SMARTSTREAM_TABLES", str(path))
    assert trusted_asset_key("orders").path == ["orders", "live_trusted"]
    assert current_asset_key("orders").path == ["orders", "live_current"] and current_op_name("orders") == "orders__live_current"
    monkeypatch.delenv("SMARTSTREAM_TABLES")
    assert current_asset_key("orders").path == ["orders", "current"]  # not in the built-in registry: no label
    for bad in ("Live", "live-1", "1live", "[live]"):
        with pytest.raises(RegistryError, match="asset_label"):
            load_tables(extra=orders(tmp_path, f"    asset_label: {bad!r}\n" if bad != "[live]" else "    asset_label: [live]\n", name=f"{bad.strip('[]')}.yaml"))


def test_a_table_name_starting_with_an_underscore_is_refused(tmp_path):
    """quarantine/_stream/ and quarantine/_annotations/ sit beside the quarantine Delta
    tables; a table named _stream would share its folder with them (and vacuum them)."""
    path = registry(tmp_path, "tables:\n  _stream:\n" + BASE.replace("raw/shop/orders/", "raw/shop/stream/"))
    with pytest.raises(RegistryError, match="_stream.*cannot start with _"):
        load_tables(extra=path)
