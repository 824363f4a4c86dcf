"""durable-sync 0.3.0's own connector modules, read from its installed wheel and ported by their imports.

``make install`` installs ``durable-sync==0.3.0`` with ``--no-deps`` (its only dependency, temporalio,
is what this platform replaces): its files are read, never imported. ``DURABLE_SYNC_03_WHEEL`` may
name the wheel file instead (a machine without the package). Neither: the test fails with the fix.

The port is what the README's porting guide says and nothing else, applied to import lines only:
``durable_sync.connectors.<system>`` becomes the package the connector is copied to (here
``ported_ds.<system>``), ``from temporalio import activity`` becomes
``from connectors.compat import activity``, and ``durable_sync`` becomes ``connectors.compat``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import re
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

VERSION = "0.3.0"
PACKAGE = "ported_ds"
SYSTEMS = {
    "github": ["__init__.py", "api.py", "source.py"],
    "asana": ["__init__.py", "destination.py"],
    "luma": ["__init__.py", "api.py", "source.py", "destination.py"],
}

_IMPORT_LINE = re.compile(r"^\s*(from|import)\s")


def original_text(relpath: str) -> str:
    """The text of ``durable_sync/<relpath>`` in durable-sync 0.3.0."""
    wheel = os.environ.get("DURABLE_SYNC_03_WHEEL", "").strip()
    if wheel:
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(f"durable_sync/{relpath}").decode()
    try:
        dist = importlib.metadata.distribution("durable-sync")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail(
            "durable-sync 0.3.0 is not installed: `make install` installs it "
            "(pip install --no-deps durable-sync==0.3.0), or set DURABLE_SYNC_03_WHEEL to its wheel"
        )
    if dist.version != VERSION:
        pytest.fail(f"durable-sync {dist.version} is installed; the port test reads {VERSION}")
    return Path(str(dist.locate_file(f"durable_sync/{relpath}"))).read_text(encoding="utf-8")


def port_line(line: str) -> str:
    """One line as ported: import lines rewritten, every other line unchanged."""
    if not _IMPORT_LINE.match(line):
        return line
    line = re.sub(r"\bdurable_sync\.connectors\.(github|asana|luma)\b", rf"{PACKAGE}.\1", line)
    line = line.replace("from temporalio import activity", "from connectors.compat import activity")
    return re.sub(r"\bdurable_sync\b", "connectors.compat", line)


def port(text: str) -> str:
    """A module's source as ported (see the module docstring)."""
    return "".join(port_line(line) for line in text.splitlines(keepends=True))


def install(root: Path) -> dict[str, ModuleType]:
    """Write the ported connectors under ``root/ported_ds`` and import them; modules by ``system.module``."""
    pkg = root / PACKAGE
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text('"""durable-sync 0.3.0 connectors, ported by their imports."""\n')
    for system, files in SYSTEMS.items():
        (pkg / system).mkdir(exist_ok=True)
        for name in files:
            (pkg / system / name).write_text(port(original_text(f"connectors/{system}/{name}")))
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    importlib.invalidate_caches()
    out = {}
    for system, files in SYSTEMS.items():
        for name in files:
            mod = f"{PACKAGE}.{system}" + ("" if name == "__init__.py" else f".{name[:-3]}")
            out[mod.removeprefix(f"{PACKAGE}.")] = importlib.import_module(mod)
    return out
