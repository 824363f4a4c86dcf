"""A request the API counts as several (a batch) takes that many of the credential's rate-limit slots."""

from __future__ import annotations

import json

import httpx

from connectors.asana.client import AsanaClient
from connectors.http import COST_EXTENSION, HttpSettings, Rate, make_client, use_shared_limits


class CountingLimits:
    """Shared limits that grant every slot at once and count them per key."""

    def __init__(self) -> None:
        self.acquired: dict[str, int] = {}

    async def acquire(self, key: str, rate: Rate) -> bool:
        self.acquired[key] = self.acquired.get(key, 0) + 1
        return True

    async def blocked_until(self, key: str) -> float:
        return 0.0

    async def block_until(self, key: str, until: float) -> None:
        return None


def _ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"data": []})


async def test_a_request_takes_as_many_slots_as_it_costs():
    limits = CountingLimits()
    with use_shared_limits(limits):
        async with make_client(
            service="svc",
            base_url="https://api.example.test",
            credential="svc:k",
            rate=Rate(100, 1),
            transport=httpx.MockTransport(_ok),
        ) as client:
            await client.get("/one")
            await client.post("/batch", json={}, extensions={COST_EXTENSION: 10})
    assert limits.acquired == {"svc:k": 11}


async def test_an_asana_batch_costs_one_slot_per_action():
    """Asana counts every action of a batch as a request against its limits: so does our limiter."""

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json={"data": {"gid": "42"}})
        actions = json.loads(request.content)["data"]["actions"]
        return httpx.Response(
            200, json={"data": [{"status_code": 200, "body": {"data": {"gid": "1"}}} for _ in actions]}
        )

    limits = CountingLimits()
    client = AsanaClient("test-token", http=HttpSettings(transport=httpx.MockTransport(answer)))
    with use_shared_limits(limits):
        async with client:
            await client.batch([{"method": "put", "relative_path": f"/tasks/{i}", "data": {}} for i in range(7)])
            await client.get_project("42")
    assert list(limits.acquired.values()) == [8]
