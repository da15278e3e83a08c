"""Configuration (docs/contract.md §2): defaults, precedence, profile lookup and every error path.

``rentalctl.config.load`` is called directly with an explicit ``env`` and ``cwd``; every expected
value below is written out by hand from the contract and the shipped YAML files.
"""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from rentalctl import config
from rentalctl.config import Settings
from rentalctl.config_model import AwsSettings
from rentalctl.errors import ConfigError, InvalidSetting
from rentalctl.urls import (
    S3URL,
    DuckdbURL,
    DynamodbURL,
    FileURL,
    MysqlURL,
    RedshiftURL,
    SqliteURL,
)

REPO = Path(__file__).resolve().parents[1]
AWS_EXAMPLE = REPO / "config" / "aws.example.yaml"
ALL_TABLES = ("apartments", "apartment_attributes", "user_viewing", "bookings")


def load(
    cwd: Path,
    *,
    config_file: str | Path | None = None,
    profile: str | None = None,
    overrides: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Settings:
    return config.load(
        config=None if config_file is None else str(config_file),
        profile=profile,
        overrides=overrides,
        env=env or {},
        cwd=cwd,
    )


def write_config(directory: Path, text: str, name: str = "cfg.yaml") -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def assert_error(
    excinfo: pytest.ExceptionInfo[BaseException], *fragments: str, cls: type = InvalidSetting
) -> str:
    """The error is of ``cls``, maps to exit code 2, and its message holds every fragment."""
    err = excinfo.value
    assert isinstance(err, cls), f"{type(err).__name__}: {err}"
    assert isinstance(err, ConfigError)
    assert int(err.exit_code) == 2
    message = str(err)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --------------------------------------------------------------------------- defaults


def test_defaults_are_the_local_profile_under_dot_rentalctl(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    s = load(tmp_path)
    assert s.config_file == REPO / "config" / "local.yaml"
    assert s.target == "local"
    assert s.home == base / ".rentalctl"
    assert s.source == SqliteURL(base / ".rentalctl" / "source.db")
    assert s.lake == FileURL(base / ".rentalctl" / "lake")
    assert s.warehouse == DuckdbURL(base / ".rentalctl" / "warehouse.duckdb")
    assert s.state == SqliteURL(base / ".rentalctl" / "state.db")
    assert str(s.source) == f"sqlite:///{base}/.rentalctl/source.db"
    assert str(s.lake) == f"file://{base}/.rentalctl/lake"
    assert str(s.warehouse) == f"duckdb:///{base}/.rentalctl/warehouse.duckdb"
    assert str(s.state) == f"sqlite:///{base}/.rentalctl/state.db"
    assert s.tables == ALL_TABLES
    assert dict(s.lookback) == {
        "apartments": 300,
        "apartment_attributes": 300,
        "user_viewing": 10_000,
        "bookings": 300,
    }
    assert {k: str(v) for k, v in s.fx_rates.items()} == {
        "USD": "1.0",
        "EUR": "1.08",
        "GBP": "1.27",
        "INR": "0.012",
    }
    assert s.batch_size == 10_000
    assert s.part_file_rows == 100_000
    assert s.max_rejected_share == 0.2
    assert s.aws.region is None
    assert s.aws.spark_workers == 2
    assert s.aws.glue_connections == ()
    assert s.aws.state_machine_name == "rentalctl-pipeline"


def test_empty_config_file_gives_the_built_in_defaults(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    path = write_config(tmp_path, "# nothing here\n")
    s = load(tmp_path, config_file=path)
    assert s.config_file == path.resolve()
    assert s.target == "local"
    assert s.source == SqliteURL(base / ".rentalctl" / "source.db")
    assert s.tables == ALL_TABLES
    assert {k: str(v) for k, v in s.fx_rates.items()} == {
        "USD": "1.0",
        "EUR": "1.08",
        "GBP": "1.27",
        "INR": "0.012",
    }
    assert s.batch_size == 10_000


def test_rentalctl_home_moves_every_default_url(tmp_path: Path) -> None:
    home = tmp_path / "elsewhere" / "home"
    s = load(tmp_path, env={"RENTALCTL_HOME": str(home)})
    assert s.home == home.resolve()
    assert s.source == SqliteURL(home.resolve() / "source.db")
    assert s.lake == FileURL(home.resolve() / "lake")
    assert s.warehouse == DuckdbURL(home.resolve() / "warehouse.duckdb")
    assert s.state == SqliteURL(home.resolve() / "state.db")


def test_relative_rentalctl_home_is_relative_to_cwd(tmp_path: Path) -> None:
    s = load(tmp_path, env={"RENTALCTL_HOME": "rel/home"})
    assert s.home == tmp_path.resolve() / "rel" / "home"
    assert s.source == SqliteURL(tmp_path.resolve() / "rel" / "home" / "source.db")


def test_home_with_tilde_is_expanded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    s = load(tmp_path, overrides={"home": "~/rc"})
    assert s.home == (tmp_path / "user" / "rc").resolve()


def test_home_placeholder_is_substituted_in_urls_from_every_origin(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    path = write_config(tmp_path, "home: data\nlake:\n  url: file://{home}/my-lake\n")
    s = load(
        tmp_path,
        config_file=path,
        env={"RENTALCTL_SOURCE_URL": "sqlite:///{home}/from-env.db"},
        overrides={"state.url": "sqlite:///{home}/from-set.db"},
    )
    assert s.lake == FileURL(base / "data" / "my-lake")
    assert s.source == SqliteURL(base / "data" / "from-env.db")
    assert s.state == SqliteURL(base / "data" / "from-set.db")


def test_relative_paths_in_urls_resolve_against_cwd(tmp_path: Path) -> None:
    base = tmp_path.resolve()
    s = load(
        tmp_path,
        env={
            "RENTALCTL_SOURCE_URL": "sqlite:///rel/src.db",
            "RENTALCTL_LAKE_URL": "file://lake-dir",
            "RENTALCTL_WAREHOUSE_URL": "duckdb:///wh/w.duckdb",
            "RENTALCTL_STATE_URL": "sqlite:///st.db",
        },
    )
    assert s.source == SqliteURL(base / "rel" / "src.db")
    assert s.lake == FileURL(base / "lake-dir")
    assert s.warehouse == DuckdbURL(base / "wh" / "w.duckdb")
    assert s.state == SqliteURL(base / "st.db")


def test_absolute_paths_in_urls_are_kept(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        env={
            "RENTALCTL_SOURCE_URL": "sqlite:////srv/data/src.db",
            "RENTALCTL_LAKE_URL": "file:///srv/lake",
            "RENTALCTL_WAREHOUSE_URL": "duckdb:////srv/wh.duckdb",
            "RENTALCTL_STATE_URL": "sqlite:////srv/state.db",
        },
    )
    assert s.source == SqliteURL(Path("/srv/data/src.db"))
    assert s.lake == FileURL(Path("/srv/lake"))
    assert s.warehouse == DuckdbURL(Path("/srv/wh.duckdb"))
    assert s.state == SqliteURL(Path("/srv/state.db"))


def test_server_and_cloud_url_forms(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        env={
            "RENTALCTL_SOURCE_URL": "mysql://etl@db.example.com/market",
            "RENTALCTL_LAKE_URL": "s3://my-bucket/some/prefix/",
            "RENTALCTL_WAREHOUSE_URL": "redshift://loader@wg.example.com/analytics",
            "RENTALCTL_STATE_URL": "dynamodb://rentalctl-state",
        },
    )
    assert s.source == MysqlURL("etl", "db.example.com", 3306, "market")
    assert s.lake == S3URL("my-bucket", "some/prefix")
    assert s.warehouse == RedshiftURL("loader", "wg.example.com", 5439, "analytics")
    assert s.state == DynamodbURL("rentalctl-state")
    assert str(s.source) == "mysql://etl@db.example.com:3306/market"
    assert str(s.lake) == "s3://my-bucket/some/prefix"
    assert str(s.warehouse) == "redshift://loader@wg.example.com:5439/analytics"
    assert str(s.state) == "dynamodb://rentalctl-state"


def test_explicit_ports_and_bucket_without_prefix(tmp_path: Path) -> None:
    s = load(
        tmp_path,
        overrides={
            "source.url": "mysql://etl@10.0.0.5:3307/market",
            "lake.url": "s3://my-bucket",
            "warehouse.url": "redshift://loader@wg.example.com:5440/dw",
        },
    )
    assert s.source == MysqlURL("etl", "10.0.0.5", 3307, "market")
    assert s.lake == S3URL("my-bucket", "")
    assert str(s.lake) == "s3://my-bucket"
    assert s.warehouse == RedshiftURL("loader", "wg.example.com", 5440, "dw")


# --------------------------------------------------------------------------- precedence

PRECEDENCE = [
    # (env var, --set key, Settings attribute, file value, env value, --set value, expected leaf)
    ("RENTALCTL_SOURCE_URL", "source.url", "source", "sqlite:///f.db", "sqlite:///e.db",
     "sqlite:///s.db", ("f.db", "e.db", "s.db")),
    ("RENTALCTL_LAKE_URL", "lake.url", "lake", "file://f-lake", "file://e-lake",
     "file://s-lake", ("f-lake", "e-lake", "s-lake")),
    ("RENTALCTL_WAREHOUSE_URL", "warehouse.url", "warehouse", "duckdb:///f.duckdb",
     "duckdb:///e.duckdb", "duckdb:///s.duckdb", ("f.duckdb", "e.duckdb", "s.duckdb")),
    ("RENTALCTL_STATE_URL", "state.url", "state", "sqlite:///f-state.db",
     "sqlite:///e-state.db", "sqlite:///s-state.db", ("f-state.db", "e-state.db", "s-state.db")),
    ("RENTALCTL_HOME", "home", "home", "f-home", "e-home", "s-home",
     ("f-home", "e-home", "s-home")),
]  # fmt: skip


@pytest.mark.parametrize(
    ("var", "key", "attr", "file_value", "env_value", "set_value", "leaves"),
    PRECEDENCE,
    ids=[p[1] for p in PRECEDENCE],
)
def test_precedence_file_then_env_then_set(
    tmp_path: Path,
    var: str,
    key: str,
    attr: str,
    file_value: str,
    env_value: str,
    set_value: str,
    leaves: tuple[str, str, str],
) -> None:
    base = tmp_path.resolve()
    section, _, leaf = key.partition(".")
    text = f"{section}:\n  {leaf}: {file_value}\n" if leaf else f"{section}: {file_value}\n"
    path = write_config(tmp_path, text)

    def where(s: Settings) -> Path:
        value = getattr(s, attr)
        return value if isinstance(value, Path) else value.path

    assert where(load(tmp_path, config_file=path)) == base / leaves[0]
    assert where(load(tmp_path, config_file=path, env={var: env_value})) == base / leaves[1]
    got = load(tmp_path, config_file=path, env={var: env_value}, overrides={key: set_value})
    assert where(got) == base / leaves[2]


def test_set_overrides_any_setting_and_is_read_as_yaml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "extract:\n  batch_size: 500\n")
    s = load(
        tmp_path,
        config_file=path,
        overrides={
            "extract.batch_size": "5000",
            "quality.max_rejected_share": "0.5",
            "tables": "bookings,apartments",
            "lookback": "{bookings: 60}",
            "aws.glue_connections": "[conn-a, conn-b]",
            "target": "aws",
        },
    )
    assert s.batch_size == 5000
    assert s.max_rejected_share == 0.5
    assert s.tables == ("apartments", "bookings")  # dependency order
    assert s.lookback["bookings"] == 60
    assert s.lookback["apartments"] == 300
    assert s.aws.glue_connections == ("conn-a", "conn-b")
    assert s.target == "aws"


def test_set_home_changes_home_placeholder_in_file_urls(tmp_path: Path) -> None:
    s = load(tmp_path, env={"RENTALCTL_HOME": "env-home"}, overrides={"home": "set-home"})
    assert s.source == SqliteURL(tmp_path.resolve() / "set-home" / "source.db")


# --------------------------------------------------------------------------- --config / --profile


def test_config_relative_to_cwd(tmp_path: Path) -> None:
    write_config(tmp_path, "extract:\n  batch_size: 1234\n", name="conf/mine.yaml")
    s = load(tmp_path, config_file="conf/mine.yaml")
    assert s.batch_size == 1234
    assert s.config_file == tmp_path.resolve() / "conf" / "mine.yaml"


def test_config_wins_over_profile(tmp_path: Path) -> None:
    write_config(tmp_path, "extract:\n  batch_size: 111\n", name="config/local.yaml")
    path = write_config(tmp_path, "extract:\n  batch_size: 222\n", name="explicit.yaml")
    assert load(tmp_path, config_file=path, profile="local").batch_size == 222


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, config_file="nope.yaml")
    assert_error(excinfo, "not found", str(tmp_path.resolve() / "nope.yaml"), cls=ConfigError)


def test_profile_found_in_cwd_config_dir_before_shipped(tmp_path: Path) -> None:
    local = write_config(tmp_path, "home: ./from-cwd\n", name="config/local.yaml")
    s = load(tmp_path, profile="local")
    assert s.config_file == local.resolve()
    assert s.home == tmp_path.resolve() / "from-cwd"
    # without --profile the default profile "local" is looked up the same way
    assert load(tmp_path).config_file == local.resolve()


def test_custom_profile_in_cwd(tmp_path: Path) -> None:
    staging = write_config(tmp_path, "extract:\n  batch_size: 777\n", name="config/staging.yaml")
    s = load(tmp_path, profile="staging")
    assert s.config_file == staging.resolve()
    assert s.batch_size == 777


def test_shipped_profile_when_cwd_has_none(tmp_path: Path) -> None:
    assert load(tmp_path, profile="local").config_file == REPO / "config" / "local.yaml"


def test_unknown_profile_lists_shipped_profiles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, profile="staging")
    # aws.example.yaml is a template to copy, not a profile.
    message = assert_error(excinfo, "'staging'", "(profiles: local)", cls=ConfigError)
    assert "aws.example" not in message


def test_profile_name_with_path_characters_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, profile="../secrets")
    assert_error(excinfo, "--profile", "'../secrets'")


# --------------------------------------------------------------------------- URL errors

URL_KEYS = [
    ("source.url", "RENTALCTL_SOURCE_URL", "mysql://"),
    ("lake.url", "RENTALCTL_LAKE_URL", "s3://"),
    ("warehouse.url", "RENTALCTL_WAREHOUSE_URL", "redshift://"),
    ("state.url", "RENTALCTL_STATE_URL", "dynamodb://"),
]


@pytest.mark.parametrize(("key", "var", "form"), URL_KEYS, ids=[k[0] for k in URL_KEYS])
@pytest.mark.parametrize("origin", ["file", "env", "set"])
def test_unknown_url_scheme(tmp_path: Path, key: str, var: str, form: str, origin: str) -> None:
    bad = "bogus://somewhere/x"
    section = key.split(".")[0]
    path = write_config(tmp_path, f"{section}:\n  url: {bad}\n" if origin == "file" else "")
    env = {var: bad} if origin == "env" else {}
    overrides = {key: bad} if origin == "set" else {}
    expected_origin = {"file": str(path.resolve()), "env": var, "set": f"--set {key}"}[origin]
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, env=env, overrides=overrides)
    assert_error(excinfo, key, "'bogus://somewhere/x'", f"(from {expected_origin})", form)


def test_unknown_scheme_message_exactly(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, env={"RENTALCTL_SOURCE_URL": "bogus://x"})
    assert str(excinfo.value) == (
        "invalid setting source.url = 'bogus://x' (from RENTALCTL_SOURCE_URL): "
        "expected sqlite:///PATH or mysql://USER@HOST[:PORT]/DATABASE"
    )


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("lake.url", "file://"),
        ("lake.url", "s3://UPPER_case_bucket/x"),
        ("state.url", "dynamodb://ab"),
        ("source.url", "mysql://etl@db.example.com"),  # no database
        ("source.url", "mysql://db.example.com/market"),  # no user
        ("warehouse.url", "redshift://loader@wg.example.com:port/dw"),
        *(
            pytest.param(
                key,
                url,
            )
            for key, url in [
                ("source.url", "sqlite:///"),
                ("warehouse.url", "duckdb:///"),
                ("state.url", "sqlite:///"),
            ]
        ),
    ],
)
def test_malformed_urls(tmp_path: Path, key: str, url: str) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, overrides={key: url})
    assert_error(excinfo, key, repr(url), f"(from --set {key})", "expected")


def test_url_that_is_not_a_string(tmp_path: Path) -> None:
    path = write_config(tmp_path, "source:\n  url: 5\n")
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path)
    assert_error(excinfo, "source.url = 5", str(path.resolve()), "URL")


PASSWORD_URLS = [
    pytest.param(
        "source.url",
        "RENTALCTL_SOURCE_URL",
        "mysql://etl:Sup3rS3cret@db.example.com:3306/market",
        "Sup3rS3cret",
        "'mysql://etl:***@db.example.com:3306/market'",
        id="mysql",
    ),
    pytest.param(
        "warehouse.url",
        "RENTALCTL_WAREHOUSE_URL",
        "redshift://loader:Sup3rS3cret@wg.example.com:5439/analytics",
        "Sup3rS3cret",
        "'redshift://loader:***@wg.example.com:5439/analytics'",
        id="redshift",
    ),
    pytest.param(
        "source.url",
        "RENTALCTL_SOURCE_URL",
        "mysql://etl:Sup3rS3cret@db.example.com/market",
        "Sup3rS3cret",
        "'mysql://etl:***@db.example.com/market'",
        id="mysql-default-port",
    ),
    pytest.param(
        "source.url",
        "RENTALCTL_SOURCE_URL",
        "mysql://etl:p@ss/w0rd@db.example.com:3306/market",
        "p@ss/w0rd",
        "source.url",
        id="mysql-password-with-at-and-slash",
    ),
    pytest.param(
        "source.url",
        "RENTALCTL_SOURCE_URL",
        "mysql://etl:Sup3rS3cret@db.example.com:3306/market.prod",
        "Sup3rS3cret",
        "source.url",
        id="mysql-password-and-bad-database-name",
    ),
]


@pytest.mark.parametrize(("key", "var", "url", "password", "shown"), PASSWORD_URLS)
@pytest.mark.parametrize("origin", ["file", "env", "set"])
def test_password_in_url_is_refused_without_echoing_it(
    tmp_path: Path, key: str, var: str, url: str, password: str, shown: str, origin: str
) -> None:
    section = key.split(".")[0]
    path = write_config(tmp_path, f'{section}:\n  url: "{url}"\n' if origin == "file" else "")
    env = {var: url} if origin == "env" else {}
    overrides = {key: url} if origin == "set" else {}
    expected_origin = {"file": str(path.resolve()), "env": var, "set": f"--set {key}"}[origin]
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, env=env, overrides=overrides)
    message = assert_error(excinfo, key, shown, f"(from {expected_origin})")
    assert password not in message
    assert password not in repr(excinfo.value.value)
    assert "RENTALCTL_SOURCE_PASSWORD" in message


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("source.url", "mysql://etl@db.example.com:70000/market"),
        ("source.url", "mysql://etl@db.example.com:0/market"),
        ("warehouse.url", "redshift://loader@wg.example.com:99999/dw"),
        ("warehouse.url", "redshift://loader@wg.example.com:00000/dw"),
    ],
)
def test_port_out_of_range(tmp_path: Path, key: str, url: str) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, overrides={key: url})
    assert_error(excinfo, key, repr(url), f"(from --set {key})", "1 and 65535")


# --------------------------------------------------------------------------- file-level errors


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour: blue\n", "'colour'"),
        ("extract:\n  batchsize: 5\n", "'extract.batchsize'"),
        ("quality:\n  max_rejected: 0.1\n", "'quality.max_rejected'"),
        ("aws:\n  regoin: eu-west-1\n", "'aws.regoin'"),
        ("source:\n  url: sqlite:///x.db\n  password: hunter2\n", "'source.password'"),
        ("source: sqlite:///x.db\n", "'source'"),
    ],
)
def test_unknown_key_in_file(tmp_path: Path, text: str, key: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, config_file=path)
    message = assert_error(excinfo, "unknown setting", key, str(path.resolve()), cls=ConfigError)
    assert "hunter2" not in message


def test_unknown_key_from_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, overrides={"extract.batchsize": "5"})
    assert_error(
        excinfo,
        "unknown setting",
        "'extract.batchsize'",
        "--set extract.batchsize",
        "did you mean extract.batch_size?",  # the closest key, not all of them
        cls=ConfigError,
    )


def test_empty_section_is_accepted(tmp_path: Path) -> None:
    path = write_config(tmp_path, "aws:\n  # region: eu-west-1\nextract:\n")
    s = load(tmp_path, config_file=path)
    assert s.aws.region is None
    assert s.batch_size == 10_000


def test_invalid_yaml(tmp_path: Path) -> None:
    path = write_config(tmp_path, "source:\n  url: [unclosed\n")
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, config_file=path)
    assert_error(excinfo, str(path.resolve()), "not valid YAML", "line 2", cls=ConfigError)


def test_invalid_yaml_message_is_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "source:\n  url: [unclosed\n")
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, config_file=path)
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize(
    "text",
    [
        "- a\n- b\n",
        "just some text\n",
        "42\n",
        pytest.param(
            "[]\n",
        ),
        "false\n",
    ],
)
def test_non_mapping_yaml(tmp_path: Path, text: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(ConfigError) as excinfo:
        load(tmp_path, config_file=path)
    assert_error(excinfo, str(path.resolve()), "mapping", cls=ConfigError)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("target: cloud\n", "target = 'cloud'"),
        ('home: ""\n', "home = ''"),
        ("home: 5\n", "home = 5"),
    ],
)
def test_bad_target_and_home(tmp_path: Path, text: str, fragment: str) -> None:
    path = write_config(tmp_path, text)
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path)
    assert_error(excinfo, fragment, f"(from {path.resolve()})", "expected")


# --------------------------------------------------------------------------- tables

BAD_TABLES = [
    ("tables: []\n", None, "tables = []"),
    ("tables: [apartments, nope]\n", None, "tables = 'nope'"),
    ("tables: 5\n", None, "tables = 5"),
    ("tables: {apartments: 1}\n", None, "tables = {'apartments': 1}"),
    ("", "apartments,nope", "tables = 'nope'"),
    ("", " , ", "tables = []"),
]


@pytest.mark.parametrize(("text", "set_value", "fragment"), BAD_TABLES)
def test_bad_tables(tmp_path: Path, text: str, set_value: str | None, fragment: str) -> None:
    path = write_config(tmp_path, text)
    overrides = {"tables": set_value} if set_value is not None else {}
    origin = "--set tables" if set_value is not None else str(path.resolve())
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, overrides=overrides)
    assert_error(excinfo, fragment, f"(from {origin})", "apartments, apartment_attributes")


def test_tables_in_dependency_order_without_duplicates(tmp_path: Path) -> None:
    path = write_config(tmp_path, "tables: [bookings, user_viewing, bookings, apartments]\n")
    s = load(tmp_path, config_file=path)
    assert s.tables == ("apartments", "user_viewing", "bookings")
    path2 = write_config(tmp_path, "tables: 'bookings, apartment_attributes'\n", name="b.yaml")
    assert load(tmp_path, config_file=path2).tables == ("apartment_attributes", "bookings")


# --------------------------------------------------------------------------- lookback

BAD_LOOKBACK = [
    ("lookback: {apartments: -1}\n", None, "lookback.apartments = -1"),
    ("lookback: {user_viewing: true}\n", None, "lookback.user_viewing = True"),
    ("lookback: {bookings: 1.5}\n", None, "lookback.bookings = 1.5"),
    ("lookback: {bookings: soon}\n", None, "lookback.bookings = 'soon'"),
    ("lookback: {nope: 60}\n", None, "lookback.nope = 60"),
    ("lookback: [60]\n", None, "lookback = [60]"),
    ("", "{apartments: -5}", "lookback.apartments = -5"),
]


@pytest.mark.parametrize(("text", "set_value", "fragment"), BAD_LOOKBACK)
def test_bad_lookback(tmp_path: Path, text: str, set_value: str | None, fragment: str) -> None:
    path = write_config(tmp_path, text)
    overrides = {"lookback": set_value} if set_value is not None else {}
    origin = "--set lookback" if set_value is not None else str(path.resolve())
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, overrides=overrides)
    assert_error(excinfo, fragment, f"(from {origin})", "expected")


def test_lookback_overrides_only_the_named_tables(tmp_path: Path) -> None:
    path = write_config(tmp_path, "lookback: {bookings: 600, user_viewing: 10}\n")
    assert dict(load(tmp_path, config_file=path).lookback) == {
        "apartments": 300,
        "apartment_attributes": 300,
        "user_viewing": 10,
        "bookings": 600,
    }
    path2 = write_config(tmp_path, "lookback:\n", name="empty.yaml")
    assert dict(load(tmp_path, config_file=path2).lookback)["bookings"] == 300


# --------------------------------------------------------------------------- fx_rates

BAD_FX = [
    ("fx_rates: {eur: 1.08}\n", None, "fx_rates.eur = 'eur'"),
    ("fx_rates: {EURO: 1.08}\n", None, "fx_rates.EURO = 'EURO'"),
    ("fx_rates: {E1R: 1.08}\n", None, "fx_rates.E1R = 'E1R'"),
    ("fx_rates: {EUR: 0}\n", None, "fx_rates.EUR = 0"),
    ("fx_rates: {EUR: -1.5}\n", None, "fx_rates.EUR = -1.5"),
    ("fx_rates: {EUR: abc}\n", None, "fx_rates.EUR = 'abc'"),
    ("fx_rates: {EUR: true}\n", None, "fx_rates.EUR = True"),
    ("fx_rates: {EUR: .nan}\n", None, "fx_rates.EUR = nan"),
    ("fx_rates: {EUR: [1]}\n", None, "fx_rates.EUR = [1]"),
    ("fx_rates: {}\n", None, "fx_rates = {}"),
    ("fx_rates: [1.08]\n", None, "fx_rates = [1.08]"),
    ("", "{USD: 1, GBP: zero}", "fx_rates.GBP = 'zero'"),
]


@pytest.mark.parametrize(("text", "set_value", "fragment"), BAD_FX)
def test_bad_fx_rates(tmp_path: Path, text: str, set_value: str | None, fragment: str) -> None:
    path = write_config(tmp_path, text)
    overrides = {"fx_rates": set_value} if set_value is not None else {}
    origin = "--set fx_rates" if set_value is not None else str(path.resolve())
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, overrides=overrides)
    assert_error(excinfo, fragment, f"(from {origin})", "expected")


def test_fx_rates_are_exact_decimals(tmp_path: Path) -> None:
    path = write_config(tmp_path, 'fx_rates: {USD: 1, EUR: "1.10", JPY: 0.0067}\n')
    rates = load(tmp_path, config_file=path).fx_rates
    assert {k: str(v) for k, v in rates.items()} == {"USD": "1", "EUR": "1.10", "JPY": "0.0067"}
    assert all(isinstance(v, Decimal) for v in rates.values())


# --------------------------------------------------------------------------- extract / quality

BAD_NUMBERS = [
    ("extract.batch_size", "0", "extract.batch_size = 0"),
    ("extract.batch_size", "99", "extract.batch_size = 99"),
    ("extract.batch_size", "1000001", "extract.batch_size = 1000001"),
    ("extract.batch_size", "many", "extract.batch_size = 'many'"),
    ("extract.batch_size", "true", "extract.batch_size = True"),
    ("extract.batch_size", "2500.5", "extract.batch_size = 2500.5"),
    ("extract.batch_size", "-100", "extract.batch_size = -100"),
    ("extract.part_file_rows", "999", "extract.part_file_rows = 999"),
    ("extract.part_file_rows", "100000001", "extract.part_file_rows = 100000001"),
    ("extract.part_file_rows", "lots", "extract.part_file_rows = 'lots'"),
    ("quality.max_rejected_share", "-0.1", "quality.max_rejected_share = -0.1"),
    ("quality.max_rejected_share", "1.5", "quality.max_rejected_share = 1.5"),
    ("quality.max_rejected_share", "half", "quality.max_rejected_share = 'half'"),
    ("quality.max_rejected_share", "true", "quality.max_rejected_share = True"),
    ("pipeline.max_concurrency", "-1", "pipeline.max_concurrency = -1"),
    ("pipeline.max_concurrency", "41", "pipeline.max_concurrency = 41"),
    ("pipeline.max_concurrency", "all", "pipeline.max_concurrency = 'all'"),
]


@pytest.mark.parametrize(("key", "raw", "fragment"), BAD_NUMBERS)
@pytest.mark.parametrize("origin", ["file", "set"])
def test_bad_extract_and_quality_numbers(
    tmp_path: Path, key: str, raw: str, fragment: str, origin: str
) -> None:
    section, leaf = key.split(".")
    text = f"{section}:\n  {leaf}: {raw}\n" if origin == "file" else ""
    path = write_config(tmp_path, text)
    overrides = {key: raw} if origin == "set" else {}
    where = f"--set {key}" if origin == "set" else str(path.resolve())
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, overrides=overrides)
    assert_error(excinfo, fragment, f"(from {where})", "expected")


def test_max_concurrency_defaults_to_4_and_takes_0_to_40(tmp_path: Path) -> None:
    assert load(tmp_path).max_concurrency == 4
    path = write_config(tmp_path, "pipeline:\n  max_concurrency: 0\n")
    assert load(tmp_path, config_file=path).max_concurrency == 0
    assert load(tmp_path, overrides={"pipeline.max_concurrency": "40"}).max_concurrency == 40


def test_extract_and_quality_boundaries_are_accepted(tmp_path: Path) -> None:
    low = load(
        tmp_path,
        overrides={
            "extract.batch_size": "100",
            "extract.part_file_rows": "1000",
            "quality.max_rejected_share": "0",
        },
    )
    assert (low.batch_size, low.part_file_rows, low.max_rejected_share) == (100, 1000, 0.0)
    high = load(
        tmp_path,
        overrides={
            "extract.batch_size": "1000000",
            "extract.part_file_rows": "100000000",
            "quality.max_rejected_share": "1",
        },
    )
    assert (high.batch_size, high.part_file_rows, high.max_rejected_share) == (
        1_000_000,
        100_000_000,
        1.0,
    )


# --------------------------------------------------------------------------- aws.*

BAD_AWS = [
    ("glue_role_arn", "not-an-arn", "aws.glue_role_arn = 'not-an-arn'", "ARN"),
    ("sns_topic_arn", "rentalctl-alerts", "aws.sns_topic_arn = 'rentalctl-alerts'", "ARN"),
    ("source_secret_arn", "rentalctl/aurora", "aws.source_secret_arn = 'rentalctl/aurora'", "ARN"),
    ("redshift_copy_role_arn", "'12'", "aws.redshift_copy_role_arn = '12'", "ARN"),
    ("state_machine_log_group_arn", "'log'", "aws.state_machine_log_group_arn = 'log'", "ARN"),
    ("region", "5", "aws.region = 5", "string"),
    ("glue_version", "''", "aws.glue_version = ''", "string"),
    ("spark_workers", "0", "aws.spark_workers = 0", "positive"),
    ("spark_workers", "-2", "aws.spark_workers = -2", "positive"),
    ("spark_workers", "two", "aws.spark_workers = 'two'", "positive"),
    ("spark_workers", "true", "aws.spark_workers = True", "positive"),
    ("python_shell_dpu", "0", "aws.python_shell_dpu = 0", "positive"),
    ("glue_timeout_minutes", "-5", "aws.glue_timeout_minutes = -5", "positive"),
    ("glue_connections", "one-connection", "aws.glue_connections = 'one-connection'", "list"),
    ("glue_connections", "[1, 2]", "aws.glue_connections = [1, 2]", "list"),
]


@pytest.mark.parametrize(("name", "raw", "fragment", "expected"), BAD_AWS)
@pytest.mark.parametrize("origin", ["file", "set"])
def test_bad_aws_values(
    tmp_path: Path, name: str, raw: str, fragment: str, expected: str, origin: str
) -> None:
    path = write_config(tmp_path, f"aws:\n  {name}: {raw}\n" if origin == "file" else "")
    overrides = {f"aws.{name}": raw} if origin == "set" else {}
    where = f"--set aws.{name}" if origin == "set" else str(path.resolve())
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, config_file=path, overrides=overrides)
    assert_error(excinfo, fragment, f"(from {where})", expected)


@pytest.mark.parametrize("name", ["spark_workers", "glue_timeout_minutes"])
def test_aws_integer_settings_refuse_fractions(tmp_path: Path, name: str) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, overrides={f"aws.{name}": "2.5"})
    assert_error(excinfo, f"aws.{name} = 2.5")


def test_aws_glue_max_retries_zero_is_accepted(tmp_path: Path) -> None:
    assert load(tmp_path, overrides={"aws.glue_max_retries": "0"}).aws.glue_max_retries == 0


def test_aws_null_values_keep_the_defaults(tmp_path: Path) -> None:
    path = write_config(tmp_path, "aws:\n  region: null\n  spark_workers: null\n")
    s = load(tmp_path, config_file=path)
    assert s.aws.region is None
    assert s.aws.spark_workers == 2


# --------------------------------------------------------------------------- aws.example.yaml

EXPECTED_AWS_EXAMPLE = AwsSettings(
    region="eu-west-1",
    scripts_prefix="scripts",
    glue_role_arn="arn:aws:iam::123456789012:role/rentalctl-glue",
    glue_version="5.0",
    glue_job_prefix="rentalctl",
    spark_worker_type="G.1X",
    spark_workers=2,
    python_shell_dpu=0.0625,
    glue_timeout_minutes=60,
    glue_max_retries=0,
    glue_connections=("rentalctl-aurora-vpc",),
    state_machine_name="rentalctl-pipeline",
    state_machine_role_arn="arn:aws:iam::123456789012:role/rentalctl-sfn",
    state_machine_log_group_arn="arn:aws:logs:eu-west-1:123456789012:log-group:/rentalctl/sfn:*",
    schedule="cron(0 3 * * ? *)",
    scheduler_role_arn="arn:aws:iam::123456789012:role/rentalctl-scheduler",
    sns_topic_arn="arn:aws:sns:eu-west-1:123456789012:rentalctl-alerts",
    source_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rentalctl/aurora-AbCdEf",
    redshift_secret_arn=(
        "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rentalctl/redshift-AbCdEf"
    ),
    redshift_copy_role_arn="arn:aws:iam::123456789012:role/rentalctl-redshift-copy",
)


def test_aws_example_documents_every_aws_setting() -> None:
    doc = yaml.safe_load(AWS_EXAMPLE.read_text(encoding="utf-8"))
    documented = set(doc["aws"])
    fields = {f.name for f in dataclasses.fields(AwsSettings)}
    assert documented == fields
    assert len(fields) == 20


def _check_aws_example(s: Settings, tmp_path: Path, glue_max_retries: int) -> None:
    assert s.config_file == AWS_EXAMPLE
    assert s.target == "aws"
    assert s.home == tmp_path.resolve() / ".rentalctl"
    assert s.source == MysqlURL(
        "etl_reader", "my-aurora.cluster-xxxx.eu-west-1.rds.amazonaws.com", 3306, "marketplace"
    )
    assert s.lake == S3URL("my-rental-lake", "rentalctl")
    assert s.warehouse == RedshiftURL(
        "etl_loader",
        "my-workgroup.123456789012.eu-west-1.redshift-serverless.amazonaws.com",
        5439,
        "analytics",
    )
    assert s.state == DynamodbURL("rentalctl-state")
    assert s.tables == ALL_TABLES
    assert s.aws == dataclasses.replace(EXPECTED_AWS_EXAMPLE, glue_max_retries=glue_max_retries)
    for f in dataclasses.fields(AwsSettings):
        assert getattr(s.aws, f.name) not in (None, ()), f.name


def test_aws_example_loads_via_config(tmp_path: Path) -> None:
    s = load(tmp_path, config_file=AWS_EXAMPLE)
    _check_aws_example(s, tmp_path, glue_max_retries=0)


def test_aws_example_values_with_workaround(tmp_path: Path) -> None:
    """Until glue_max_retries=0 is accepted: everything else in the example loads and is set."""
    s = load(tmp_path, config_file=AWS_EXAMPLE, overrides={"aws.glue_max_retries": "1"})
    _check_aws_example(s, tmp_path, glue_max_retries=1)


# --------------------------------------------------------------------------- public()


def test_public_settings_hold_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "Zebra-Hunter2-Secret"
    monkeypatch.setenv("RENTALCTL_SOURCE_PASSWORD", secret)
    env = {
        "RENTALCTL_SOURCE_PASSWORD": secret,
        "RENTALCTL_SOURCE_URL": "mysql://etl@db.example.com:3306/market",
        "RENTALCTL_WAREHOUSE_URL": "redshift://loader@wg.example.com/dw",
    }
    s = load(tmp_path, env=env)
    public = s.public()
    dumped = json.dumps(public)
    assert secret not in dumped
    assert secret not in repr(s)
    assert public["source.url"] == "mysql://etl@db.example.com:3306/market"
    assert public["warehouse.url"] == "redshift://loader@wg.example.com:5439/dw"
    assert set(public) == {
        "config_file",
        "target",
        "home",
        "source.url",
        "lake.url",
        "warehouse.url",
        "state.url",
        "tables",
        "lookback",
        "fx_rates",
        "spark.master",
        "transform.engine",
    }
    assert public["fx_rates"] == {"USD": "1.0", "EUR": "1.08", "GBP": "1.27", "INR": "0.012"}
    assert public["tables"] == list(ALL_TABLES)


def test_public_settings_of_the_aws_example_hold_no_password(tmp_path: Path) -> None:
    s = load(tmp_path, config_file=AWS_EXAMPLE, overrides={"aws.glue_max_retries": "1"})
    dumped = json.dumps(s.public())
    assert "password" not in dumped.lower()
    assert json.loads(dumped)["source.url"] == (
        "mysql://etl_reader@my-aurora.cluster-xxxx.eu-west-1.rds.amazonaws.com:3306/marketplace"
    )


@pytest.mark.parametrize("rate", ["0.0000001", "1000000000000"])
def test_fx_rate_must_fit_decimal_18_6(rate: str) -> None:
    with pytest.raises(InvalidSetting) as caught:
        config.load(overrides={"fx_rates.EUR": rate}, env={})
    assert "fx_rates.EUR" in str(caught.value)
    assert "at most 6 decimal places, below 10^12" in str(caught.value)


def test_fx_rate_with_trailing_zeros_fits() -> None:
    settings = config.load(overrides={"fx_rates.EUR": "1.1000000000"}, env={})
    assert settings.fx_rates["EUR"] == Decimal("1.1")


# --------------------------------------------------------------------------- transform.engine


def test_transform_engine_defaults_to_duckdb(tmp_path: Path) -> None:
    assert load(tmp_path).transform_engine == "duckdb"
    assert load(tmp_path, config_file=write_config(tmp_path, "")).transform_engine == "duckdb"


@pytest.mark.parametrize("engine", ["Spark", "pandas", "null"])
def test_bad_transform_engine(tmp_path: Path, engine: str) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, env={"RENTALCTL_ENGINE": engine})
    assert_error(
        excinfo,
        "invalid setting transform.engine",
        "(from RENTALCTL_ENGINE)",
        "expected duckdb or spark",
    )


# --------------------------------------------------------------------------- spark.master


def test_spark_master_defaults_to_every_local_core(tmp_path: Path) -> None:
    assert load(tmp_path).spark_master == "local[*]"
    assert load(tmp_path, config_file=write_config(tmp_path, "")).spark_master == "local[*]"


@pytest.mark.parametrize(
    ("key", "env_var", "in_file", "in_env", "in_set"),
    [
        ("spark.master", "RENTALCTL_SPARK_MASTER", "local[2]", "spark://10.0.0.5:7077", "yarn"),
        ("transform.engine", "RENTALCTL_ENGINE", "spark", "duckdb", "spark"),
    ],
)
def test_engine_settings_from_file_env_and_set(
    tmp_path: Path, key: str, env_var: str, in_file: str, in_env: str, in_set: str
) -> None:
    section, name = key.split(".")
    field = key.replace(".", "_")
    path = write_config(tmp_path, f"{section}:\n  {name}: {in_file}\n")
    assert getattr(load(tmp_path, config_file=path), field) == in_file
    env = {env_var: in_env}
    assert getattr(load(tmp_path, config_file=path, env=env), field) == in_env
    s = load(tmp_path, config_file=path, env=env, overrides={key: in_set})
    assert getattr(s, field) == in_set
    assert s.public()[key] == in_set


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[*]",
        "local[4]",
        "local[4,2]",
        "local[*,3]",
        "spark://127.0.0.1:7077",
        "spark://master-a.example.com:7077,master-b.example.com:7077",
        "yarn",
        "k8s://https://10.0.0.1:6443",
    ],
)
def test_spark_master_forms_that_are_accepted(tmp_path: Path, master: str) -> None:
    assert load(tmp_path, env={"RENTALCTL_SPARK_MASTER": master}).spark_master == master


@pytest.mark.parametrize(
    "master",
    [
        "local[0]",
        "local[two]",
        "spark://127.0.0.1",
        "spark://user:secret@10.0.0.5:7077",
        "http://10.0.0.5:7077",
        "local[*] --conf x=y",
        "null",
    ],
)
def test_bad_spark_master(tmp_path: Path, master: str) -> None:
    with pytest.raises(InvalidSetting) as excinfo:
        load(tmp_path, overrides={"spark.master": master})
    assert_error(
        excinfo,
        "invalid setting spark.master",
        "(from --set spark.master)",
        "expected a Spark master URL: local[*], local[N], spark://HOST:PORT, yarn or "
        "k8s://https://HOST:PORT",
    )
