"""Checks made before a local run starts (``before_run``), for what no retry mends and what
would otherwise be found only after the extract (or reported as an internal error): an
unwritable home, a Java Spark cannot start with, a warehouse file another process holds open.
Each fails with ResourceUnavailable (exit 3): one line naming the path or the process, and the
fix.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rentalctl import urls
from rentalctl.adapters.warehouse_duckdb import check_writable
from rentalctl.errors import ResourceUnavailable
from rentalctl.tables import table

NOTHING_RUN = "Nothing was run"


def before_run(context: Any, tables: list[str]) -> None:
    """Fail fast, before a local run starts, on what no retry can fix: an unwritable home, a
    Java Spark cannot start with, a missing source, source table or store, a warehouse file that
    cannot be written or that another process holds open."""
    settings = context.settings
    check_home(settings.home)
    if settings.transform_engine == "spark":
        check_java()
    with context.source() as source:
        source.check_tables([table(t) for t in tables])
    context.state.ensure()  # the bookmark store is created on the first run
    context.state.seed(tables)
    if isinstance(settings.warehouse, urls.DuckdbURL):
        check_writable(settings.warehouse.path)
        check_warehouse_free(settings.warehouse.path, context.state.lock_holder())


def check_home(home: Path) -> None:
    """The home holds the run logs, and by default the lake, warehouse and state store."""
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".rentalctl-check-"):
            pass
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
        raise ResourceUnavailable(
            f"the rentalctl home {home} cannot be written ({reason}): give this user write "
            "access to it, or point RENTALCTL_HOME (setting `home`) at a folder it can write. "
            + NOTHING_RUN
        ) from None


def java_binary(environ: Mapping[str, str] | None = None) -> Path | None:
    """The java Spark's launcher will run: $JAVA_HOME/bin/java when JAVA_HOME is set (the
    launcher then ignores the PATH), else the one on the PATH; None when there is none."""
    env = os.environ if environ is None else environ
    java_home = env.get("JAVA_HOME")
    if java_home:
        return Path(java_home) / "bin" / "java"
    found = shutil.which("java", path=env.get("PATH"))
    return Path(found) if found else None


def check_java(environ: dict[str, str] | None = None) -> None:
    """ResourceUnavailable when there is no java for Spark to run (``java_binary``)."""
    env = os.environ if environ is None else environ
    java = java_binary(env)
    java_home = env.get("JAVA_HOME")
    if java_home:
        if not (java and java.is_file() and os.access(java, os.X_OK)):
            raise ResourceUnavailable(
                f"JAVA_HOME={java_home} has no {java}: point JAVA_HOME at a Java 17 (or later) "
                "installation (the folder holding bin/java), or unset it to use the java on the "
                f"PATH; transform.engine=spark needs it. {NOTHING_RUN}"
            )
        return
    if java is None:
        raise ResourceUnavailable(
            "transform.engine=spark needs Java 17 (or later) and there is no java on the PATH "
            "and no JAVA_HOME: install a JDK (for example `apt-get install "
            "openjdk-17-jre-headless`) or set JAVA_HOME, or use transform.engine=duckdb. "
            + NOTHING_RUN
        )


_HOLDER = re.compile(r"Conflicting lock is held in (?P<program>.+?) \(PID (?P<pid>\d+)\)")


def check_warehouse_free(path: Path, lock_holder: dict[str, Any] | None) -> None:
    """The warehouse file is not held open by another process (a notebook's DuckDB session,
    read-only or not, locks the file for every other process). One quick open, no waiting.
    A file held by the run that holds the pipeline lock is left to the lock (exit 4)."""
    if not path.exists():
        return  # the run creates it
    import duckdb  # imported here: a Redshift profile's preflight never loads it

    try:
        duckdb.connect(str(path)).close()
    except duckdb.IOException as exc:
        found = _HOLDER.search(str(exc))
        if found is None:
            raise ResourceUnavailable(
                f"cannot open DuckDB warehouse {path}: {exc}. {NOTHING_RUN}"
            ) from None
        pid = int(found["pid"])
        if lock_holder and int(lock_holder.get("pid") or 0) == pid:
            return  # another run: the pipeline lock refuses this one with its own message
        raise ResourceUnavailable(
            f"DuckDB warehouse {path} is held open by another process: {found['program']} "
            f"(PID {pid}); close that session (a notebook or `duckdb` shell: close its "
            f"connection), or stop it (`kill {pid}`), then run again. {NOTHING_RUN}"
        ) from None
