"""What a local setup must not be, refused in plain words before it can do harm: a home or file
path with a backslash (DuckDB would read it as a folder separator at the raw load), a warehouse
file that cannot be written (exit 3 at once, not retried as if it were busy), and a symbolic
link inside the lake that leads out of it."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest

from rentalctl import config
from rentalctl.adapters.lake_local import LocalLake
from rentalctl.errors import ConfigError, InvalidSetting
from tests.support.cli import invoke


def test_a_home_with_a_backslash_is_refused(tmp_path: Path) -> None:
    home = str(tmp_path / "data\\home")
    with pytest.raises(InvalidSetting) as caught:
        config.load(env={"RENTALCTL_HOME": home})
    assert str(caught.value) == (
        f"invalid setting home = {home!r} (from RENTALCTL_HOME): expected a path without a "
        "backslash (\\): DuckDB reads one as a folder separator"
    )
    assert caught.value.exit_code == 2


def test_a_file_url_with_a_backslash_is_refused(tmp_path: Path) -> None:
    url = f"duckdb:///{tmp_path}/w\\h.duckdb"
    with pytest.raises(InvalidSetting, match=r"^invalid setting warehouse.url = .*backslash"):
        config.load(overrides={"warehouse.url": url}, env={})


@pytest.fixture
def immutable(tmp_path: Path) -> Path:
    """An immutable file (``chattr +i``: not even root may write it), made mutable again after."""
    path = tmp_path / "home" / "warehouse.duckdb"
    path.parent.mkdir()
    import duckdb

    duckdb.connect(str(path)).close()
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("chattr +i is not available here (needs root and a file system with it)")
    yield path
    subprocess.run([chattr, "-i", str(path)], check=True)


def test_an_immutable_warehouse_file_fails_the_run_at_once_with_exit_3(
    immutable: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENTALCTL_HOME", str(immutable.parent))
    assert invoke("demo-data", "--scale", "0.002").exit_code == 0
    started = time.monotonic()
    result = invoke("run")
    assert result.exit_code == 3, (result.stdout, result.stderr)
    assert time.monotonic() - started < 10  # no retry of a failure no retry can mend
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: DuckDB warehouse {immutable} cannot be written (Operation not permitted: "
        f"{immutable}): give this user write access to the file and its folder (an immutable "
        "file shows an `i` in `lsattr`; `chattr -i` clears it). Nothing was run"
    )
    assert invoke("-o", "json", "status").stdout.count('"run_id"') == 0  # no run started


@pytest.fixture
def lake_with_a_link_out(tmp_path: Path) -> tuple[LocalLake, Path]:
    outside = tmp_path / "elsewhere"
    (outside / "run_id=R1").mkdir(parents=True)
    (outside / "run_id=R1" / "part-00000.csv.gz").write_bytes(b"not the lake's")
    root = tmp_path / "lake"
    (root / "raw").mkdir(parents=True)
    (root / "raw" / "bookings").symlink_to(outside, target_is_directory=True)
    return LocalLake(root), outside


def test_a_link_out_of_the_lake_is_refused_for_reads_writes_and_deletes(
    lake_with_a_link_out: tuple[LocalLake, Path],
) -> None:
    lake, outside = lake_with_a_link_out
    key = "raw/bookings/run_id=R1/part-00000.csv.gz"
    message = (
        f"lake path {lake.root / key} leads to {outside / 'run_id=R1' / 'part-00000.csv.gz'}, "
        f"outside the lake {lake.root}: a symbolic link inside the lake points out of it"
    )
    for attempt in (
        lambda: lake.get_bytes(key),
        lambda: lake.put_bytes("raw/bookings/run_id=R1/part-00000.csv.gz", b"x"),
        lambda: lake.delete_prefix("raw/bookings/run_id=R1/"),
        lambda: lake.list("raw/bookings/"),
    ):
        with pytest.raises(ConfigError) as caught:
            attempt()
        assert str(caught.value).startswith("lake path "), str(caught.value)
    with pytest.raises(ConfigError) as caught:
        lake.get_bytes(key)
    assert str(caught.value).startswith(message)
    assert (outside / "run_id=R1" / "part-00000.csv.gz").read_bytes() == b"not the lake's"


def test_a_lake_root_that_is_a_link_works(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "lake"
    real.mkdir(parents=True)
    (tmp_path / "lake").symlink_to(real, target_is_directory=True)
    lake = LocalLake(tmp_path / "lake")
    lake.put_bytes("raw/bookings/run_id=R1/x.csv.gz", b"rows")
    assert lake.list("raw/") == ["raw/bookings/run_id=R1/x.csv.gz"]
    assert (real / "raw/bookings/run_id=R1/x.csv.gz").read_bytes() == b"rows"
