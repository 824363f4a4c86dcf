"""Named pagination strategies: how one page of a listing names the next.

Every API here pages in one of a handful of ways, and writing the loop by hand in each client is
how the Notion and Luma loops came to be identical copies. A strategy knows two things only: which
token a page body names for the next page (:meth:`TokenPagination.next_token`) and how to walk the
pages lazily given a ``fetch(token)`` that sends one request (:meth:`TokenPagination.pages`). Where the
token goes in the request (a query parameter, a JSON body field) stays with the client, because that
differs per endpoint even within one API. Anchors: dlt's ``rest_client.paginators`` and Singer SDK's
``pagination`` module (one small class per scheme).

==============================  ==========================================  ========================
Strategy                        Reads from a page                           Used by
==============================  ==========================================  ========================
:class:`NextCursorPagination`   ``next_cursor`` while ``has_more``          Notion, Luma
:class:`NextPageTokenPagination` ``nextPageToken`` until ``isLast``         Jira enhanced search
:class:`OffsetPagination`       ``next_page.offset``                        Asana
:class:`SyncTokenPagination`    ``sync_token`` of ``nextPageUrl``           Contentful Sync API
:class:`LinkHeaderPagination`   ``Link: <…>; rel="next"`` (a header)        GitHub
==============================  ==========================================  ========================

:class:`ItemOffsetPagination` is the base of the offset-by-items schemes (Spotify's ``next``,
ListenBrainz's ``total_count``): the next offset is this page's offset plus its items.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from typing import Any

import httpx

from connectors.core import ConfigError, Record, SourceSpec
from connectors.http.client import Json

__all__ = [
    "ItemOffsetPagination",
    "LinkHeaderPagination",
    "NextCursorPagination",
    "NextPageTokenPagination",
    "OffsetPagination",
    "SyncTokenPagination",
    "TokenPagination",
    "drain_pages",
    "offset_of",
    "parse_link_header",
]

Fetch = Callable[[str | None], Awaitable[Json]]
FetchRecordPage = Callable[[SourceSpec, list[str] | None, str | None], Awaitable[tuple[list[Record], str | None]]]


class TokenPagination:
    """A strategy whose page bodies name the next page by a token (a cursor, an offset, a page token).

    Subclasses implement :meth:`next_token`; :meth:`pages` is the one paging loop they all share.
    """

    name = "token"

    def next_token(self, body: Mapping[str, Any]) -> str | None:
        """The token of the next page, or None after the last one.

        Args:
            body: One page's JSON body.
        """
        raise NotImplementedError

    async def fetch_page(self, fetch: Fetch, token: str | None) -> Json:
        """Fetch one page; a subclass may map an error about the token here (Asana's expired offsets).

        Args:
            fetch: Sends the request for the page ``token`` names (None: the first page).
            token: The page's token.
        """
        return await fetch(token)

    async def pages(self, fetch: Fetch, start: str | None = None) -> AsyncGenerator[Json, None]:
        """Every page body, fetched lazily: ``fetch(token)`` is called once per page.

        Args:
            fetch: Sends the request for one page (None: the first page).
            start: The token to resume from (a stored cursor); None starts at the first page.

        Yields:
            Each page's JSON body, in order.
        """
        token = start
        while True:
            body = await self.fetch_page(fetch, token)
            yield body
            token = self.next_token(body)
            if token is None:
                return


def _non_empty(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


class NextCursorPagination(TokenPagination):
    """Send a cursor; read ``next_cursor`` while ``has_more`` is true (Notion, Luma)."""

    name = "next_cursor"

    def next_token(self, body: Mapping[str, Any]) -> str | None:
        """The cursor of the next page, or None after the last one."""
        if not body.get("has_more"):
            return None
        return _non_empty(body.get("next_cursor"))


class ItemOffsetPagination(TokenPagination):
    """Send ``offset``; the next page starts after this page's items while :meth:`has_more` says so.

    The offset is a count of items (Spotify, ListenBrainz), so a cursor can hold it as text
    (:func:`offset_of` reads it back).
    """

    name = "item_offset"
    #: The list of a page's items.
    items = "items"

    def has_more(self, body: Mapping[str, Any], end: int) -> bool:
        """Whether a page follows this one, which ends at item ``end``."""
        raise NotImplementedError

    def next_token(self, body: Mapping[str, Any]) -> str | None:
        """The offset of the next page as text, or None after the last one."""
        items = body.get(self.items)
        if not isinstance(items, list) or not items:
            return None
        offset = body.get("offset")
        end = (offset if isinstance(offset, int) else 0) + len(items)
        return str(end) if self.has_more(body, end) else None


class NextPageTokenPagination(TokenPagination):
    """Send ``nextPageToken``; read it back until ``isLast`` (Jira's enhanced search).

    Tokens are opaque and expire (Atlassian documents 7 days); a source that stores one in a
    cursor must be ready to start over when Jira refuses it.
    """

    name = "nextPageToken"

    def next_token(self, body: Mapping[str, Any]) -> str | None:
        """The token of the next page, or None after the last one."""
        if body.get("isLast") is True:
            return None
        return _non_empty(body.get("nextPageToken"))


class OffsetPagination(TokenPagination):
    """Send ``offset``; read ``next_page.offset`` (Asana). Offsets are opaque tokens, not counts."""

    name = "offset"

    def next_token(self, body: Mapping[str, Any]) -> str | None:
        """The offset of the next page, or None after the last one."""
        page = body.get("next_page")
        if not isinstance(page, dict):
            return None
        return _non_empty(page.get("offset"))


class SyncTokenPagination(TokenPagination):
    """Contentful's Sync API: follow ``nextPageUrl`` until a page carries ``nextSyncUrl``.

    Only the ``sync_token`` of those URLs is kept (and sent to our own base URL), never the URL
    itself: the token is what a cursor stores, and a URL from a response is not trusted with our token.
    """

    name = "sync_token"

    @staticmethod
    def token_of(url: Any) -> str | None:
        """The ``sync_token`` query parameter of ``url``, or None."""
        if not isinstance(url, str) or not url:
            return None
        try:
            token = httpx.URL(url).params.get("sync_token")
        except (httpx.InvalidURL, TypeError, ValueError):
            return None
        return token or None

    def next_token(self, body: Mapping[str, Any]) -> str | None:
        """The token of the next page of this sync, or None on the last page."""
        return self.token_of(body.get("nextPageUrl"))

    def next_page(self, body: Mapping[str, Any]) -> str | None:
        """The token of the next page of this sync, or None on the last page (:meth:`next_token`)."""
        return self.next_token(body)

    def next_sync(self, body: Mapping[str, Any]) -> str | None:
        """The token of the next sync (only on the last page): the incremental cursor."""
        return self.token_of(body.get("nextSyncUrl"))


_LINK_RE = re.compile(r"<(?P<url>[^>]*)>(?P<params>[^<]*)")
_LINK_PARAM_RE = re.compile(r";\s*(?P<name>[^\s=;,]+)\s*=\s*(?:\"(?P<quoted>[^\"]*)\"|(?P<bare>[^\s;,]*))")


def parse_link_header(value: str | None) -> dict[str, str]:
    """The URLs of an RFC 8288 ``Link`` header by relation (``{"next": url, "last": url}``).

    Tolerates what servers send in practice: commas inside the ``<…>`` URL, unquoted relations,
    several relations in one parameter (``rel="next last"``), extra parameters and odd spacing.
    Relation names are lowercased; the first link of a relation wins.

    Args:
        value: The header's value (None or empty: no links).
    """
    links: dict[str, str] = {}
    if not value:
        return links
    for match in _LINK_RE.finditer(value):
        url = match.group("url").strip()
        for param in _LINK_PARAM_RE.finditer(match.group("params")):
            if param.group("name").lower() != "rel":
                continue
            rels = param.group("quoted") if param.group("quoted") is not None else param.group("bare")
            for rel in rels.split():
                links.setdefault(rel.lower(), url)
    return links


class LinkHeaderPagination:
    """Follow ``Link: <…>; rel="next"`` to the end (GitHub's REST API).

    Stateless; :meth:`next_url` reads one response's links, :meth:`has_more` says whether to go on.
    The next page is a URL in a header rather than a token in the body, so this is not a
    :class:`TokenPagination`.
    """

    name = "link_header"
    relation = "next"

    def next_url(self, links: Mapping[str, str]) -> str | None:
        """The URL of the next page, or None on the last one.

        Args:
            links: The response's links by relation (:func:`parse_link_header`).
        """
        return links.get(self.relation) or None

    def has_more(self, links: Mapping[str, str]) -> bool:
        """Whether the links name a next page."""
        return self.next_url(links) is not None


def offset_of(cursor: str | None, owner: str) -> int:
    """The offset an offset cursor holds (the cursor of :class:`TokenPagination` s that count items).

    Args:
        cursor: The cursor (None: the first page, offset 0).
        owner: Who reads it, for the error (``SpotifySource 'spotify'``).

    Raises:
        ConfigError: The cursor is not a whole number (it belongs to another pass or connector).
    """
    if cursor is None:
        return 0
    if not cursor.isdigit():
        raise ConfigError(f"{owner}: cursor {cursor[:100]!r} is not an offset; start a full pass")
    return int(cursor)


async def drain_pages(
    fetch_page: FetchRecordPage, spec: SourceSpec, only_items: list[str] | None = None
) -> list[Record]:
    """Every record of ``spec``: ``fetch_page`` called from the first page until its cursor is None.

    The one ``Source.fetch`` of the connectors that read by pages (``fetch_page`` is the preferred way
    to read; ``fetch`` is this drain over it).

    Args:
        fetch_page: The source's ``fetch_page(spec, only_items, cursor) -> (records, next cursor)``.
        spec: The spec to read.
        only_items: Only these primary keys (None: all).
    """
    out: list[Record] = []
    cursor: str | None = None
    while True:
        page, cursor = await fetch_page(spec, only_items, cursor)
        out.extend(page)
        if cursor is None:
            return out
