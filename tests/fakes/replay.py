"""A transport that answers with recorded vendor answers, for the ``test_real_shapes.py`` modules.

A real-shapes test does not model a vendor (that is what the stateful fakes do): it replays answers copied
from the vendor's documentation or a recorded session, to prove the connector reads the real shapes.
The machinery was the same in every such module and lives here; what stays in the module is what is the
vendor's own, as a small subclass overriding a hook:

- ``key(request)``: the route an answer is recorded under; (method, path) unless overridden (the URL
  without its query for OAuth endpoints on several hosts, whether an offset was sent for Asana, …).
- ``miss(request)``: the answer to a request nothing was recorded for: the routing function given to the
  constructor if any, else a plain 404 (a subclass answers the vendor's error body, or raises).
- ``respond(request, answer)``: the response built from an ``Answer``: its headers and body encoding
  (a request id header, a vendor content type).

Answers per route are given in order; the last one repeats (``repeat_last = False``: each is given once,
then the route misses). An answer may be a handler computing it from the request. Every request is kept
in ``seen``, whatever it was answered.

Not in ``tests/fakes/common.py``: that module knows no HTTP framework, and this one is nothing but httpx.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Answer", "Handler", "Replay", "Route"]


@dataclass
class Answer:
    """One recorded answer: a status, a JSON body (``None``: no body) and the headers the vendor sent."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[httpx.Request], Answer]
"""An answer computed from the request (a token endpoint that echoes a grant, a counter, …)."""

Route = Callable[[httpx.Request], httpx.Response]
"""A routing function that answers any request itself, headers and all."""


class Replay:
    """Answers per route key, in order (the last one repeats); every request is kept in ``seen``.

    Args:
        route: answers every request no answer was recorded for (``Replay(calendar)`` routes everything
            through ``calendar``); without it such a request gets a plain 404.
    """

    repeat_last = True

    def __init__(self, route: Route | None = None) -> None:
        self.route = route
        self.routes: dict[Hashable, list[Answer | Handler]] = {}
        self.seen: list[httpx.Request] = []

    def add(self, method: str, where: str, *answers: Answer | Handler) -> None:
        """Record answers for ``(method, where)``, ``where`` being what ``key`` puts second."""
        self.record((method, where), *answers)

    def record(self, key: Hashable, *answers: Answer | Handler) -> None:
        """Record answers under a key of the subclass's own shape."""
        self.routes.setdefault(key, []).extend(answers)

    def unanswered(self) -> list[Answer | Handler]:
        """The recorded answers no request has taken yet (with ``repeat_last``, each route's last stays)."""
        return [answer for queue in self.routes.values() for answer in queue]

    def key(self, request: httpx.Request) -> Hashable:
        return (request.method, request.url.path)

    def miss(self, request: httpx.Request) -> httpx.Response:
        if self.route is not None:
            return self.route(request)
        return httpx.Response(404, text="Not found")

    def respond(self, request: httpx.Request, answer: Answer) -> httpx.Response:
        headers = {"content-type": "application/json", **answer.headers}
        content = b"" if answer.body is None else json.dumps(answer.body).encode()
        return httpx.Response(answer.status, headers=headers, content=content)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        queue = self.routes.get(self.key(request))
        if not queue:
            return self.miss(request)
        item = queue.pop(0) if len(queue) > 1 or not self.repeat_last else queue[0]
        answer = item(request) if callable(item) else item
        return self.respond(request, answer)

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def requests(self, method: str, path_end: str) -> list[httpx.Request]:
        """The requests seen with this verb whose path ends with ``path_end``."""
        return [r for r in self.seen if r.method == method and r.url.path.endswith(path_end)]
