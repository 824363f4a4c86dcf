"""docs/writing-connectors.md is executed, so its example cannot rot.

Every fenced ``python`` block of the guide is extracted in order and run as one module (the
source, the destination, the fake and the tests of the example); then each ``test_*`` function the
blocks define runs here as a test of its own. A change to the contract, the HTTP toolkit or the
testing helpers that breaks the guide's example fails this file.
"""

from __future__ import annotations

import inspect
import re
import types
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "writing-connectors.md"
BLOCK = re.compile(r"^```python\n(.*?)^```\s*$", re.M | re.S)


def _guide_module() -> types.ModuleType:
    blocks = BLOCK.findall(GUIDE.read_text(encoding="utf-8"))
    module = types.ModuleType("writing_connectors_guide")
    module.__file__ = str(GUIDE)
    code = "\n\n".join(blocks)
    exec(compile(code, str(GUIDE), "exec"), module.__dict__)
    module.__dict__["_blocks"] = blocks
    return module


GUIDE_MODULE = _guide_module()
GUIDE_TESTS = sorted(name for name, fn in vars(GUIDE_MODULE).items() if name.startswith("test_") and callable(fn))


def test_the_guide_has_a_source_a_destination_a_fake_and_tests():
    blocks = GUIDE_MODULE._blocks
    assert len(blocks) >= 4
    names = vars(GUIDE_MODULE)
    source, destination = names["JotterSource"], names["PinboardDestination"]
    from connectors.core import Destination, Source

    assert isinstance(source("t", ["inbox"]), Source)
    assert isinstance(destination("t", "b1"), Destination)
    assert len(GUIDE_TESTS) >= 4, GUIDE_TESTS


@pytest.mark.parametrize("name", GUIDE_TESTS)
def test_the_guides_example(name, tmp_path):
    fn = getattr(GUIDE_MODULE, name)
    params = inspect.signature(fn).parameters
    fn(**({"tmp_path": tmp_path} if "tmp_path" in params else {}))


def test_the_guide_covers_the_whole_contract():
    text = GUIDE.read_text(encoding="utf-8")
    for term in (
        "Record",
        "SourceSpec",
        "fetch_page",
        "DestinationSession",
        "query_existing_ids",
        "RecordError",
        "TransientError",
        "RateLimited",
        "AuthError",
        "ConfigError",
        "stores_keys",
        "create_only_properties",
        "rate_limit_key",
        "credential_fingerprint",
        "incremental",
        "commit(spec_key)",
        "max_concurrency",
        "make_client",
        "raise_for_status",
        "ASGITransport",
        "materialize_route",
    ):
        assert term in text, term


def test_the_readme_links_the_guide():
    assert "docs/writing-connectors.md" in (REPO / "README.md").read_text(encoding="utf-8")
