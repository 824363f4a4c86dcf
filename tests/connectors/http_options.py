"""Connector constructor options in tests: the HTTP keywords a test overrides go into ``HttpSettings``."""

from __future__ import annotations

from typing import Any

from connectors.http import HttpSettings

HTTP_KEYS = ("transport", "retry", "sleep", "clock")


def merge_options(options: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``options`` updated by ``overrides``; a transport, retry, sleep or clock goes into ``options["http"]``."""
    http = {k: overrides.pop(k) for k in HTTP_KEYS if k in overrides}
    if http:
        options["http"] = HttpSettings.of(options.get("http"), **http)
    options.update(overrides)
    return options
