"""The one HTTP toolkit every connector uses: retries, limits, typed errors, one client base, paginators.

Five modules, each usable alone:

- :mod:`connectors.http.retry`: :func:`make_client`, an ``httpx.AsyncClient`` whose every request is
  retried, paced and limited per credential, and the typed errors and redaction (read its docstring
  for how one request travels);
- :mod:`connectors.http.limits`: one rate limit per credential shared by every process (a GCRA
  schedule in a store all of them reach, the state store in a run), and the block after a 429;
- :mod:`connectors.http.client`: :class:`JsonApiClient`, the base of every system's REST client
  (:class:`TokenApiClient` for a client of one secret in a header), :class:`HttpSettings`, the one
  bundle of what tests inject (transport, sleep, clock, jitter, retry), and the connector bases a
  system's source and destination share (:class:`TokenClientConnector`, :class:`TokenClientDestination`);
- :mod:`connectors.http.paginate`: the named pagination strategies (``next_cursor``/``has_more``,
  ``nextPageToken``, offset, offset by items, Contentful's sync token, the ``Link`` header);
- :mod:`connectors.http.credentials`: :class:`TokenCredentials`, one system's secret and the keys named
  after it, and :class:`CredentialMembers`, the mixin that hands them to the engine.

Every public name of the five is re-exported here, so connectors import from ``connectors.http`` only.
"""

from __future__ import annotations

from connectors.http import client, credentials, limits, paginate, retry
from connectors.http.client import *  # noqa: F403
from connectors.http.credentials import *  # noqa: F403
from connectors.http.limits import *  # noqa: F403
from connectors.http.paginate import *  # noqa: F403
from connectors.http.retry import *  # noqa: F403

__all__ = sorted({*client.__all__, *credentials.__all__, *limits.__all__, *paginate.__all__, *retry.__all__})
