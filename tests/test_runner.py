"""Which runner the settings pick: the target alone decides, whatever the resource URLs are, and
picking one reaches nothing (no store, no AWS call)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rentalctl import config
from rentalctl.adapters.state_dynamodb import DynamoStateStore
from rentalctl.adapters.state_sqlite import SqliteStateStore
from rentalctl.context import Context
from rentalctl.orchestration.aws_run import StepFunctionsRunner
from rentalctl.orchestration.local import LocalRunner
from rentalctl.orchestration.targets import open_runner


def settings(tmp_path: Path, text: str) -> config.Settings:
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    return config.load(config=str(path), env={}, cwd=tmp_path)


LOCAL_URLS = """\
home: ./home
source: {url: "sqlite:///{home}/source.db"}
lake: {url: "file://{home}/lake"}
warehouse: {url: "duckdb:///{home}/warehouse.duckdb"}
state: {url: "sqlite:///{home}/state.db"}
"""
AWS_URLS = """\
home: ./home
source: {url: "mysql://etl@db.example.com:3306/marketplace"}
lake: {url: "s3://test-lake/rentalctl"}
warehouse: {url: "redshift://etl@wg.123456789012.eu-west-1.redshift-serverless.amazonaws.com:5439/dw"}
state: {url: "dynamodb://rentalctl-state"}
aws: {region: eu-west-1}
"""


@pytest.mark.parametrize("urls", [LOCAL_URLS, AWS_URLS], ids=["local-urls", "aws-urls"])
def test_target_local_picks_the_local_runner(tmp_path: Path, urls: str) -> None:
    context = Context(settings(tmp_path, "target: local\n" + urls))
    runner = open_runner(context, options=["--profile", "nightly"], jvm_log=False)
    assert type(runner) is LocalRunner
    assert (runner.options, runner.jvm_log) == (["--profile", "nightly"], False)
    assert runner.resumes_in_background is False
    assert runner.where == str(tmp_path.resolve() / "home")
    assert "state" not in vars(context)  # the store is not opened to pick a runner


@pytest.mark.parametrize("urls", [LOCAL_URLS, AWS_URLS], ids=["local-urls", "aws-urls"])
def test_target_aws_picks_step_functions(tmp_path: Path, urls: str) -> None:
    context = Context(settings(tmp_path, "target: aws\n" + urls))
    runner = open_runner(context, options=["--profile", "nightly"], jvm_log=False)
    assert type(runner) is StepFunctionsRunner
    assert runner.resumes_in_background is True
    state_url = (
        "dynamodb://rentalctl-state"
        if urls is AWS_URLS
        else f"sqlite:///{tmp_path.resolve()}/home/state.db"
    )
    assert runner.where == f"state store {state_url}"
    assert "state" not in vars(context)
    assert context.boto3_session is None  # no session made, so no credentials looked up


def test_a_local_store_is_known_empty_until_its_file_is_there(tmp_path: Path) -> None:
    store = SqliteStateStore(tmp_path / "state.db")
    assert store.known_empty() is True
    assert not (tmp_path / "state.db").exists()  # asking created nothing
    store.ensure()
    assert store.known_empty() is False
    store.close()


def test_a_dynamodb_store_is_never_known_empty_without_a_read() -> None:
    # No session and no credentials: the answer needs no call to AWS.
    assert DynamoStateStore("rentalctl-state").known_empty() is False
