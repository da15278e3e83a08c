"""The wheels ``upload-scripts`` gives each Glue job install with no package index, in a fresh
environment of the job's Python (3.9 for Python shell, 3.11 for Spark on Glue 5.0) holding only
what Glue provides, and the job library then imports and parses its SQL there.

The files, their order and the pip options are taken from the job definitions upload-scripts
builds (``artifacts`` and ``job_definitions``, no AWS involved), and installed as Glue does:
a Python shell job one ``--extra-py-files`` wheel after the other, the Spark job all of its
``--additional-python-modules`` in one pip command with its ``--python-modules-installer-option``.

Building the wheelhouse downloads wheels with pip from the package index it is configured with;
they are kept in ``RENTALCTL_TEST_WHEEL_CACHE`` (default: pytest's cache), so only the first run
needs the network. Without it the test is skipped, or fails when ``CI`` is set.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from rentalctl import config, sqlfiles
from rentalctl.deploy import glue_files, glue_jobs
from rentalctl.errors import ResourceUnavailable
from rentalctl.jobs import JOB_TYPES
from tests.support.pythons import python39

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = "s3://rental-lake/lake/scripts"
# What Glue provides in both runtimes and the wheelhouse leaves out. An older boto3 than the
# project uses: redshift-connector releases after 2.1.11 would refuse it.
GLUE_PROVIDES = "boto3==1.34.0"
PROBE = """\
import rentalctl.adapters.lake_s3, rentalctl.adapters.source_mysql
import rentalctl.adapters.state_dynamodb, rentalctl.adapters.warehouse_redshift
import rentalctl.jobs, pymysql, redshift_connector, sqlglot, yaml
from rentalctl import sqlfiles
print(len(sqlfiles.presentation_refresh("redshift")), len(sqlfiles.presentation_refresh("duckdb")))
"""


def _offline(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must be able to download wheels: {reason}")
    pytest.skip(f"no package index reachable to build the wheelhouse: {reason}")


@pytest.fixture(scope="module")
def cache(request: pytest.FixtureRequest) -> Path:
    configured = os.environ.get("RENTALCTL_TEST_WHEEL_CACHE")
    return Path(configured) if configured else request.config.cache.mkdir("rentalctl-wheels")


@pytest.fixture(scope="module")
def shipped(cache: Path) -> tuple[dict[str, bytes], dict[str, dict[str, str]]]:
    """(artifact path -> content, job -> its DefaultArguments), as upload-scripts builds them."""
    settings = config.load(
        config=str(REPO / "config" / "aws.example.yaml"),
        overrides={"home": str(cache), "lake.url": "s3://rental-lake/lake"},
        env={},
    )
    try:
        files = {a.path: a.content for a in glue_files.artifacts(settings)}
    except ResourceUnavailable as exc:
        _offline(str(exc))
    uris = {path: f"{SCRIPTS}/{path}" for path in files}
    definitions = glue_jobs.job_definitions(settings, uris)
    return files, {job: d["DefaultArguments"] for job, d in definitions.items()}


def _glue_like_environment(base_python: str, folder: Path, cache: Path) -> Path:
    """A fresh virtual environment with only what Glue provides besides the standard library."""
    subprocess.run([base_python, "-m", "venv", str(folder)], check=True)
    python = folder / "bin" / "python"
    version = subprocess.run(
        [str(python), "-c", "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    provided = cache / f"glue-provides-{version}"
    if not provided.is_dir():
        # With the environment's own pip: dependency markers are read for its Python.
        download = [
            str(python), "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", "--dest", f"{provided}.partial", GLUE_PROVIDES,
        ]  # fmt: skip
        done = subprocess.run(download, capture_output=True, text=True)
        if done.returncode:
            _offline(done.stderr.strip().splitlines()[-1])
        Path(f"{provided}.partial").rename(provided)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "--no-index", "--find-links", str(provided), GLUE_PROVIDES], check=True)
    return python


def _wheels(arguments: str, files: dict[str, bytes], folder: Path) -> list[Path]:
    """The S3 URIs of a job argument as local files, in the same order."""
    folder.mkdir()
    out = []
    for uri in arguments.split(","):
        assert uri.startswith(f"{SCRIPTS}/"), uri
        path = folder / uri.rsplit("/", 1)[1]
        path.write_bytes(files[uri[len(SCRIPTS) + 1 :]])
        out.append(path)
    return out


def _check(python: Path) -> None:
    out = subprocess.run(
        [str(python), "-c", PROBE], capture_output=True, text=True, cwd="/", env={"PATH": ""}
    )
    assert out.returncode == 0, out.stderr
    local = (
        len(sqlfiles.presentation_refresh("redshift")),
        len(sqlfiles.presentation_refresh("duckdb")),
    )
    assert out.stdout == f"{local[0]} {local[1]}\n"
    broken = subprocess.run([str(python), "-m", "pip", "check"], capture_output=True, text=True)
    assert broken.stdout == "No broken requirements found.\n", broken.stdout


@pytest.mark.slow
def test_python_shell_jobs_install_their_wheels_with_no_index_on_python_3_9(
    shipped: tuple[dict[str, bytes], dict[str, dict[str, str]]], cache: Path, tmp_path: Path
) -> None:
    base = python39()
    if base is None:
        reason = "no Python 3.9 interpreter here (python3.9 on PATH, or pyenv's)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: CI must run the Python shell install")
        pytest.skip(reason)
    files, arguments = shipped
    python = _glue_like_environment(base, tmp_path / "venv", cache)
    shell_job = next(job for job, kind in JOB_TYPES.items() if kind == "pythonshell")
    wheels = _wheels(arguments[shell_job]["--extra-py-files"], files, tmp_path / "wheels")
    assert wheels[-1].name == glue_files.WHEEL.split("/")[-1]
    for wheel in wheels:  # one after the other: each finds what it requires already installed
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        done = subprocess.run([*pip, "--no-index", str(wheel)], capture_output=True, text=True)
        assert done.returncode == 0, (wheel.name, done.stderr)
    _check(python)


@pytest.mark.slow
def test_the_spark_job_installs_its_wheels_with_no_index_on_python_3_11(
    shipped: tuple[dict[str, bytes], dict[str, dict[str, str]]], cache: Path, tmp_path: Path
) -> None:
    files, arguments = shipped
    transform = arguments["transform"]
    assert transform["--python-modules-installer-option"] == "--no-index"
    python = _glue_like_environment("/usr/bin/python3.11", tmp_path / "venv", cache)
    wheels = _wheels(transform["--additional-python-modules"], files, tmp_path / "wheels")
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    options = transform["--python-modules-installer-option"].split()
    done = subprocess.run([*pip, *options, *map(str, wheels)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    _check(python)


def test_a_failed_download_is_a_typed_error_and_leaves_no_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rentalctl.deploy import wheelhouse

    monkeypatch.setenv("PIP_NO_INDEX", "1")  # pip finds nothing, as with no network
    with pytest.raises(ResourceUnavailable) as failed:
        wheelhouse.wheels(tmp_path, "3.9")
    message = str(failed.value)
    assert message.startswith("cannot download the Glue jobs' wheels for Python 3.9 with pip: ")
    assert f"{tmp_path}/cache/glue-wheels" in message
    assert list((tmp_path / "cache" / "glue-wheels").iterdir()) == []
