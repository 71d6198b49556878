"""The table registry: built-in tables, a user's extra file, clear errors."""

import pytest

from smartstream_assets.tables import RegistryError, load_tables


def test_builtin_registry_declares_employees_as_headerless_dms_csv():
    spec = load_tables(extra="")["employees"]
    assert spec.format == "dms_csv" and spec.primary_key == ("EmployeeID",)
    assert list(spec.columns)[:3] == ["EmployeeID", "Education", "JoiningYear"]
    assert spec.dms.timestamp_column == "dms_commit_ts" and not spec.dms.add_column_name


def test_smartstream_tables_adds_a_table_without_code(tmp_path, monkeypatch):
    extra = tmp_path / "tables.yaml"
    extra.write_text(
        "tables:\n  orders:\n    raw_prefix: raw/shop/orders\n    format: debezium_json\n"
        "    primary_key: [order_id]\n    columns: {order_id: int64, total: float64}\n"
    )
    monkeypatch.setenv("SMARTSTREAM_TABLES", str(extra))
    tables = load_tables()
    assert {"employees", "orders"} <= set(tables)
    assert tables["orders"].raw_prefix == "raw/shop/orders/"


@pytest.mark.parametrize(
    "entry, message",
    [
        ("raw_prefix: raw/a/\n    format: xml\n    primary_key: [id]\n    columns: {id: int64}", "format must be one of"),
        ("raw_prefix: raw/a/\n    format: csv\n    primary_key: [nope]\n    columns: {id: int64}", "primary_key"),
        ("raw_prefix: raw/a/\n    format: csv\n    primary_key: [id]\n    columns: {id: integer}", "type 'integer'"),
        ("raw_prefix: landing/a/\n    format: csv\n    primary_key: [id]\n    columns: {id: int64}", "under raw/"),
        ("raw_prefix: raw/a/\n    format: csv\n    primary_key: [id]\n    columns: {id: int64}\n    dms: {add_column_name: true}", "dms block"),
    ],
)
def test_invalid_entries_are_rejected_naming_file_and_table(tmp_path, entry, message):
    extra = tmp_path / "bad.yaml"
    extra.write_text(f"tables:\n  broken:\n    {entry}\n")
    with pytest.raises(RegistryError, match=message) as err:
        load_tables(extra=str(extra))
    assert "bad.yaml" in str(err.value) and "'broken'" in str(err.value)


def test_a_user_table_cannot_silently_replace_a_builtin_one(tmp_path):
    extra = tmp_path / "dup.yaml"
    extra.write_text("tables:\n  employees:\n    raw_prefix: raw/x/\n    format: csv\n    primary_key: [id]\n    columns: {id: int64}\n")
    with pytest.raises(RegistryError, match="already defined"):
        load_tables(extra=str(extra))
