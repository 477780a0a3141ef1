"""The latency profile through real HTTP: delays per endpoint group, switched by the control API
and the emulator setting, reproducible with the seed (issue 20). Timings are checked loosely:
a delay is at least what the profile says; "not delayed" is well below it."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from typing import Any

import pytest

from allegro_sync.emulator.latency import PROFILES, Distribution, LatencyProfile, group_of

from .conftest import Harness, MakeHarness


async def _timed(emu: Harness, method: str, path: str, token: str, **kw: Any) -> tuple[int, float]:
    started = time.monotonic()
    status, _, _ = await emu.api(method, path, token, **kw)
    return status, time.monotonic() - started


async def test_a_group_with_a_fixed_delay_delays_its_requests_and_no_other(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    answer = await emu.control(
        "POST", "/latency", {"groups": {"journals": {"median_ms": 200, "p99_ms": 200}}}
    )
    assert answer["groups"] == {"journals": {"median_ms": 200.0, "p99_ms": 200.0}}
    for _ in range(2):
        status, took = await _timed(emu, "GET", "/order/events", token)
        assert status == 200
        assert took >= 0.2
        status, took = await _timed(emu, "GET", "/sale/offer-events", token)
        assert status == 200
        assert took >= 0.2
    # a listing and a single read are other groups: not delayed
    for path in ("/sale/offers", "/me"):
        status, took = await _timed(emu, "GET", path, token)
        assert status == 200
        assert took < 0.15, path
    recent = (await emu.control("GET", "/latency"))["recent_ms"]
    assert recent == {"journals": [200.0] * 4}


async def test_an_error_answer_is_delayed_too(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    await emu.control("POST", "/latency", {"groups": {"reads": {"median_ms": 150}}})
    status, took = await _timed(emu, "GET", "/order/checkout-forms/not-a-form", token)
    assert status in (400, 404, 422)
    assert took >= 0.15


async def test_requests_wait_concurrently_not_one_after_another(emu: Harness) -> None:
    """The delay is an asyncio.sleep: ten requests of 300 ms each take about 300 ms together."""
    _, token = await emu.seller_with_token()
    await emu.control("POST", "/latency", {"groups": {"listings": {"median_ms": 300}}})
    started = time.monotonic()
    answers = await asyncio.gather(*(emu.api("GET", "/sale/offers", token) for _ in range(10)))
    took = time.monotonic() - started
    assert [a[0] for a in answers] == [200] * 10
    assert 0.3 <= took < 1.5


async def test_control_api_switches_realistic_and_back_to_none(emu: Harness) -> None:
    _, token = await emu.seller_with_token()
    assert (await emu.control("GET", "/latency"))["profile"] == "none"
    realistic = await emu.control("POST", "/latency", {"profile": "realistic"})
    assert realistic["profile"] == "realistic"
    assert realistic["groups"]["reads"] == {"median_ms": 80.0, "p99_ms": 400.0}
    assert realistic["groups"]["commands"] == {"median_ms": 150.0, "p99_ms": 800.0}
    tooks = [(await _timed(emu, "GET", "/me", token))[1] for _ in range(7)]
    assert statistics.median(tooks) >= 0.02  # a log-normal of median 80 ms: rarely below 20
    drawn = (await emu.control("GET", "/latency"))["recent_ms"]["reads"]
    assert len(drawn) == 7
    assert all(took >= d / 1000 for took, d in zip(tooks, drawn, strict=True))
    await emu.control("POST", "/latency", {"profile": "none"})
    tooks = [(await _timed(emu, "GET", "/me", token))[1] for _ in range(3)]
    assert max(tooks) < 0.1
    assert (await emu.control("GET", "/latency"))["recent_ms"] == {}


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"profile": "slow"}, "profile must be one of"),
        ({"groups": {"nap": {"median_ms": 1}}}, "unknown group 'nap'"),
        ({"groups": {"reads": {"median_ms": 500, "p99_ms": 100}}}, "median_ms <= p99_ms"),
        ({"groups": {"reads": {"median_ms": "80"}}}, "must be numbers"),
        ({"profile": "none", "sleep": 1}, "unknown fields: sleep"),
        ({"profile": "none", "seed": "x"}, "seed must be an integer"),
    ],
)
async def test_a_bad_profile_is_refused_and_the_active_one_stays(
    emu: Harness, body: dict[str, Any], error: str
) -> None:
    await emu.control("POST", "/latency", {"profile": "realistic"})
    async with emu.session.post(emu.url("/__control__/latency"), json=body) as r:
        assert r.status == 400
        assert error in (await r.json())["error"]
    assert (await emu.control("GET", "/latency"))["profile"] == "realistic"


async def test_the_setting_starts_the_emulator_with_the_profile(make_emulator: MakeHarness) -> None:
    emu = await make_emulator(latency="realistic")
    assert (await emu.control("GET", "/latency"))["profile"] == "realistic"


async def test_the_same_seed_draws_the_same_delays(make_emulator: MakeHarness) -> None:
    drawn = []
    for seed in (5, 5, 6):
        emu = await make_emulator(seed=seed, latency="realistic")
        _, token = await emu.seller_with_token()
        await emu.control("POST", "/latency", {"profile": "realistic"})  # from the seed again
        # interleaved with another group: a group's sequence does not depend on the others
        for _ in range(3 if seed == 5 else 1):
            await emu.api("GET", "/sale/offers", token)
        for _ in range(4):
            await emu.api("GET", "/me", token)
        drawn.append((await emu.control("GET", "/latency"))["recent_ms"]["reads"])
    assert drawn[0] == drawn[1]
    assert drawn[0] != drawn[2]
    assert len(set(drawn[0])) == 4  # a distribution, not a constant


def test_the_distribution_has_its_median_and_p99() -> None:
    profile = LatencyProfile(seed=1, name="realistic")
    delays = sorted(profile.delay("GET", "/me") * 1000 for _ in range(20_000))
    assert 75 <= delays[len(delays) // 2] <= 85
    assert 360 <= delays[int(len(delays) * 0.99)] <= 440
    assert Distribution(200, 200).draw(profile._rngs["reads"]) == 200


def test_every_route_has_a_group() -> None:
    assert group_of("GET", "/order/events") == "journals"
    assert group_of("GET", "/order/checkout-forms") == "listings"
    assert group_of("GET", "/order/checkout-forms/{id}") == "reads"
    assert group_of("PUT", "/sale/{kind}/{command_id}") == "commands"
    assert group_of("GET", "/sale/{kind}/{command_id}/tasks") == "reports"
    assert group_of("PATCH", "/sale/product-offers/{offer_id}") == "writes"
    assert group_of("POST", "/auth/oauth/token") == "oauth"
    assert set(PROFILES["realistic"]) == {
        "journals",
        "listings",
        "reads",
        "commands",
        "reports",
        "writes",
        "oauth",
    }


def test_a_bad_latency_setting_is_one_line_and_a_nonzero_exit() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "allegro_sync.emulator", "--latency", "slow"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "invalid choice: 'slow'" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "allegro_sync.emulator"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"EMULATOR_LATENCY": "slow", "PATH": ""},
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == (
        "EMULATOR_LATENCY must be one of none, realistic"
    )
