"""The wheels the Glue jobs install besides the job library: every run-time dependency Glue does
not provide, built for the Python of each Glue runtime, so that no job reaches a package index
(a job in a VPC has no internet without a NAT gateway).

``glue_requirements.txt`` pins them (a lock file: its header says what is left to Glue and why).
``wheels`` returns them in install order from a cache under the rentalctl home, downloaded on
first use by pip on the operator's machine, from the package index that pip is configured with
(``pip download --only-binary=:all: --no-deps`` for the runtime's interpreter and platform, not
this machine's). The cache folder is named after the lock's content and the Python version: a
changed pin downloads afresh, an unchanged one never again.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from rentalctl.errors import InvalidSetting, ResourceUnavailable

PLATFORM = "manylinux2014_x86_64"  # Glue workers: x86_64 Amazon Linux, glibc 2.17 or later
PYTHON_SHELL = "3.9"  # the Python of Glue Python shell jobs (Glue version 3.0)
SPARK_PYTHON = {"4.0": "3.10", "5.0": "3.11"}  # Glue version -> the Python of its Spark jobs
_COMPLETE = "complete"  # written last into a cache folder: the download finished
_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)-.+\.whl$")


def requirements_file() -> Path:
    return Path(__file__).resolve().with_name("glue_requirements.txt")


def pins() -> dict[str, str]:
    """Normalised package name -> pinned version, from the lock file."""
    out = {}
    for line in requirements_file().read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            out[_normal(name)] = version.strip()
    return out


def spark_python(glue_version: str) -> str:
    if glue_version not in SPARK_PYTHON:
        raise InvalidSetting(
            "aws.glue_version",
            glue_version,
            f"one of {', '.join(SPARK_PYTHON)} (Spark jobs on Python 3.10 or later)",
        )
    return SPARK_PYTHON[glue_version]


def wheels(home: Path, python: str) -> list[Path]:
    """The pinned wheels for CPython ``python`` on Glue, dependencies before their dependents."""
    folder = cache_folder(home, python)
    if not (folder / _COMPLETE).is_file():
        _download(folder, python)
    return install_order(sorted(folder.glob("*.whl")))


def cache_folder(home: Path, python: str) -> Path:
    digest = hashlib.sha256(requirements_file().read_bytes()).hexdigest()[:16]
    return home / "cache" / "glue-wheels" / f"cp{python.replace('.', '')}-{digest}"


def _download(folder: Path, python: str) -> None:
    partial = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    abi = f"cp{python.replace('.', '')}"
    command = [
        *(sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check"),
        *("--no-deps", "--only-binary=:all:", "--implementation", "cp"),
        *("--python-version", python, "--abi", abi, "--platform", PLATFORM),
        *("--dest", str(partial), "--requirement", str(requirements_file())),
    ]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        failure = done.stderr.strip().splitlines()[-1:] if done.returncode else []
    except (OSError, subprocess.TimeoutExpired) as exc:
        failure = [str(exc)]
    got = dict(_name_version(name) for name in _names(partial))
    if not failure and got != pins():
        failure = [f"expected {sorted(pins().items())}, got {sorted(got.items())}"]
    if failure:
        shutil.rmtree(partial, ignore_errors=True)
        raise ResourceUnavailable(
            f"cannot download the Glue jobs' wheels for Python {python} with pip: {failure[0]} "
            "(pip uses the package index it is configured with; rentalctl keeps the wheels in "
            f"{folder.parent} once downloaded)"
        )
    (partial / _COMPLETE).write_text("\n".join(sorted(_names(partial))) + "\n")
    try:
        partial.rename(folder)
    except OSError:  # another upload-scripts finished the same download first
        shutil.rmtree(partial, ignore_errors=True)


def _names(folder: Path) -> list[str]:
    return [p.name for p in folder.glob("*.whl")]


def _name_version(filename: str) -> tuple[str, str]:
    """(normalised name, version) of a wheel file name."""
    m = _WHEEL_NAME.match(filename)
    if m is None:
        raise ValueError(f"not a wheel file name: {filename}")
    return _normal(m["name"]), m["version"]


def install_order(paths: list[Path]) -> list[Path]:
    """``paths`` sorted so that each wheel comes after the wheels it requires: installed one by
    one in this order, every requirement is already there and pip has nothing to fetch."""
    by_name = {_name_version(p.name)[0]: p for p in paths}
    needs = {name: _requires(path) & set(by_name) for name, path in by_name.items()}
    ordered: list[str] = []
    while len(ordered) < len(needs):
        ready = sorted(n for n, r in needs.items() if n not in ordered and r <= set(ordered))
        if not ready:  # a cycle (none in the lock today): the rest in name order
            ready = sorted(set(needs) - set(ordered))
        ordered.extend(ready)
    return [by_name[name] for name in ordered]


def _requires(wheel: Path) -> set[str]:
    """Names in the wheel's Requires-Dist, extras' lines left out."""
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        text = archive.read(metadata).decode("utf-8", "replace")
    out = set()
    for line in text.splitlines():
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            out.add(_normal(re.split(r"[\s;<>=!~\[(]", line.split(":", 1)[1].strip())[0]))
    return out


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
