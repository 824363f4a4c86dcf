"""The contract module: auth classification, error descriptions, neutral types, the registry."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from connectors import core
from connectors.core import (
    DESCRIPTION_LIMIT,
    AuthError,
    DestinationHTTPError,
    RateLimited,
    Record,
    TransientError,
    auth_error_in_chain,
    describe_error,
    neutral_type_error,
)
from connectors.memory import MemoryDestination, MemorySource
from connectors.registry import destination_names, discover, load_destination, load_source, source_names


@pytest.mark.parametrize(
    ("err", "expected"),
    [
        (DestinationHTTPError(401, "Notion POST /v1/pages -> 401: unauthorized"), True),
        (DestinationHTTPError(403, "forbidden"), True),
        (DestinationHTTPError(422, "field 403 is invalid"), False),  # a status beats the body
        (DestinationHTTPError(500, "upstream said 401"), False),
        (RuntimeError("token 1234-401e-abcd not found"), False),  # no word-boundary match in a UUID
        (RuntimeError("HTTP 401 from server"), True),
        (RuntimeError("invalid_grant: OAuth grant revoked"), True),
        (RateLimited("GitHub 403 rate limit", retry_after=60), False),
        (AuthError("revoked"), True),
    ],
)
def test_auth_error_in_chain(err, expected):
    assert auth_error_in_chain(err) is expected


def test_auth_error_found_through_cause_and_groups():
    try:
        try:
            raise DestinationHTTPError(401, "nope")
        except DestinationHTTPError as inner:
            raise RuntimeError("wrapper") from inner
    except RuntimeError as outer:
        assert auth_error_in_chain(outer)
    group = ExceptionGroup("many", [ValueError("x"), RuntimeError("Asana: not authorized")])
    assert not auth_error_in_chain(group)
    assert auth_error_in_chain(group, extra_needles=("not authorized",))


def test_describe_error_unwraps_groups_and_dedupes():
    assert describe_error(None) == "unknown error"
    group = ExceptionGroup("g", [ExceptionGroup("inner", [ValueError("bad")]), ValueError("bad")])
    assert describe_error(group) == "ValueError: bad"
    assert describe_error(AuthError("token revoked")) == "token revoked"


def test_neutral_types():
    ok = ["s", 1, 1.5, True, None, ["a"], dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, tzinfo=dt.UTC)]
    assert all(neutral_type_error("p", v) is None for v in ok)
    assert "no timezone" in neutral_type_error("p", dt.datetime(2024, 1, 1))
    assert "unsupported type dict" in neutral_type_error("p", {"a": 1})


def test_record_is_durable_sync_compatible():
    r = Record("1", {"a": 1})
    assert (r.primary_key, r.properties, r.body) == ("1", {"a": 1}, None)


def test_registry_discovers_entry_points():
    assert "files" in source_names()
    assert {"sqlite", "jsonl"} <= set(destination_names())
    assert load_source("files").__name__ == "FilesSource"
    assert load_destination("sqlite").__name__ == "SQLiteDestination"
    with pytest.raises(LookupError, match="installed: "):
        load_source("nope")
    info = {i.name: i for i in discover()}
    assert info["files"].kinds == "source"
    assert info["files"].distribution == "durable-sync-dagster"


def _raised(make):
    """The exception ``make`` raises, with the chain Python attached while raising it."""
    try:
        make()
    except BaseException as err:
        return err
    raise AssertionError("nothing raised")


def test_describe_error_names_the_root_cause_behind_a_wrapper():
    def page_three():
        try:
            raise OSError("[Errno 111] Connection refused")
        except OSError:
            raise RuntimeError("fetching page 3 failed")  # noqa: B904 - an implicit __context__ on purpose

    assert describe_error(_raised(page_three)) == (
        "RuntimeError: fetching page 3 failed (root cause: OSError: [Errno 111] Connection refused)"
    )

    def explicit():
        try:
            raise DestinationHTTPError(503, "Notion POST /v1/pages -> 503: service unavailable")
        except DestinationHTTPError as err:
            raise TransientError("writing page 3 failed") from err

    assert describe_error(_raised(explicit)) == (
        "writing page 3 failed (root cause: Notion POST /v1/pages -> 503: service unavailable)"
    )


def test_describe_error_does_not_repeat_a_cause_the_message_already_holds():
    def wrapped():
        try:
            raise ValueError("503 service unavailable")
        except ValueError as err:
            raise TransientError("GitHub GET /repos -> ValueError: 503 service unavailable") from err

    assert describe_error(_raised(wrapped)) == "GitHub GET /repos -> ValueError: 503 service unavailable"

    def suppressed():
        try:
            raise ValueError("inner detail")
        except ValueError:
            raise TransientError("outer") from None

    assert describe_error(_raised(suppressed)) == "outer"


def test_describe_error_masks_secrets_of_a_foreign_root_cause_and_stays_bounded():
    api_key = "AIza" + "Sy" + "x" * 33
    bearer = "tok" + "9" * 30

    def leaky():
        try:
            raise ValueError(
                f"Client error '403' for url 'https://user:pw@api.example.com/v3/videos?key={api_key}&id=1' "
                f"(sent Authorization: Bearer {bearer})"
            )
        except ValueError as err:
            raise TransientError("listing videos failed") from err

    text = describe_error(_raised(leaky))
    assert api_key not in text and bearer not in text and "user:pw" not in text
    assert "listing videos failed (root cause: ValueError: Client error '403'" in text
    assert "https://[REDACTED]@api.example.com/v3/videos?key=[REDACTED]&id=[REDACTED]" in text

    def huge():
        try:
            raise ValueError("x" * 5000)
        except ValueError as err:
            raise TransientError("y" * 5000) from err

    assert len(describe_error(_raised(huge))) <= DESCRIPTION_LIMIT


def test_describe_error_survives_a_cyclic_chain():
    a, b = ValueError("a"), ValueError("b")
    a.__cause__, b.__cause__ = b, a
    assert describe_error(a) == "ValueError: a (root cause: ValueError: b)"


# --------------------------------------------------------------------------------------------------
# Capabilities: one small runtime-checkable protocol per optional member

_CAPABILITIES = {
    core.PagedSource: "fetch_page",
    core.IncrementalSource: "incremental",
    core.ResettableSource: "reset",
    core.CommittingSource: "commit",
    core.RateLimitKeyed: "rate_limit_key",
    core.CredentialKeyed: "credential_key",
    core.CredentialFingerprinted: "credential_fingerprint",
    core.AuthClassifier: "is_auth_error",
    core.ReportingConnector: "pass_metadata",
    core.Configurable: "configured",
    core.ConfigHinting: "config_hint",
    core.SchemaEnsuring: "ensure_schema",
    core.SchemaBootstrap: "bootstrap_schema",
    core.ConcurrentDestination: "max_concurrency",
    core.KeyStoringDestination: "stores_keys",
    core.LengthLimitedDestination: "max_value_length",
    core.DescribedDestination: "describe",
    core.ListingSession: "query_existing_rows",
    core.CheckingSession: "check_record",
}


def _method() -> None:
    return None


@pytest.mark.parametrize(("protocol", "member"), list(_CAPABILITIES.items()), ids=lambda p: getattr(p, "__name__", p))
def test_a_connector_has_a_capability_when_it_has_its_one_member(protocol, member):
    value = _method if callable(getattr(protocol, member, None)) else 1
    has_it = types.SimpleNamespace(**{member: value})
    assert isinstance(has_it, protocol)
    assert not isinstance(types.SimpleNamespace(), protocol)
    # Documented where a connector author reads the contract.
    assert protocol.__name__ in core.__doc__ and member in core.__doc__
    assert protocol.__name__ in core.__all__


def test_a_method_set_to_none_counts_as_absent_and_a_value_of_none_as_present():
    assert not isinstance(types.SimpleNamespace(fetch_page=None), core.PagedSource)
    assert not isinstance(types.SimpleNamespace(commit=None), core.CommittingSource)
    # stores_keys=None means "cannot tell" (the listing decides), not "no such member".
    assert isinstance(types.SimpleNamespace(stores_keys=None), core.KeyStoringDestination)


def test_the_builtin_connectors_have_their_capabilities_structurally():
    source = MemorySource([Record("a", {})])
    dest = MemoryDestination(max_value_length=50)
    assert isinstance(source, core.Source) and isinstance(source, core.PagedSource)
    assert not isinstance(source, core.IncrementalSource)
    assert isinstance(dest, core.Destination)
    for capability in (
        core.ConcurrentDestination,
        core.KeyStoringDestination,
        core.LengthLimitedDestination,
        core.RateLimitKeyed,
        core.CredentialFingerprinted,
        core.AuthClassifier,
        core.Configurable,
        core.ConfigHinting,
        core.DescribedDestination,
    ):
        assert isinstance(dest, capability), capability.__name__
    assert not isinstance(dest, core.ReportingConnector)
