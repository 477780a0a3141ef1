"""Emulator configuration: clients, lifetimes, limits and the switches for UNCONFIRMED facts."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ClientRegistration:
    """An OAuth client (app key) registered with the emulated Allegro.

    ``redirect_uris`` are exact URIs or patterns: ``*`` matches any run of characters except
    ``/``, ``?`` and ``#`` (so ``http://127.0.0.1:*`` accepts any port), ``**`` matches anything
    (so ``http://127.0.0.1:*/**`` accepts any path on any port). Allegro itself wants an exact
    match; patterns exist only so local tools can pick a free port.
    """

    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    device_grant: bool = True

    def redirect_allowed(self, uri: str) -> bool:
        """Whether ``uri`` matches one of the registered redirect URIs."""
        return any(_uri_matches(pattern, uri) for pattern in self.redirect_uris)


def _uri_matches(pattern: str, uri: str) -> bool:
    if "*" not in pattern:
        return pattern == uri
    if "#" in uri:
        return False
    # fnmatch is not used: its single star crosses '/', which would make "any port" mean
    # "any path on any host" as well.
    regex = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            regex += ".*"
            i += 2
        elif pattern[i] == "*":
            regex += "[^/?#]*"
            i += 1
        else:
            regex += re.escape(pattern[i])
            i += 1
    return re.fullmatch(regex, uri) is not None


def default_clients() -> dict[str, ClientRegistration]:
    """The convenience client every default emulator knows: ``demo-client`` / ``demo-secret``."""
    return {
        "demo-client": ClientRegistration(
            client_secret="demo-secret",  # noqa: S106 - a public demo credential
            redirect_uris=(
                "http://127.0.0.1:*",
                "http://127.0.0.1:*/**",
                "http://localhost:*",
                "http://localhost:*/**",
            ),
            device_grant=True,
        )
    }


@dataclass(frozen=True)
class Switches:
    """Behaviour for facts the reference marks UNCONFIRMED, and optional realism.

    Defaults pick what is harder for a client; each can be switched back.
    """

    # Device flow: the documentation example quotes expires_in/interval as strings.
    device_numbers_as_strings: bool = True
    # A 429 carries no Retry-After header (issue #4630 shows none).
    send_retry_after: bool = False
    # Requests sent while blocked still count, so hammering keeps the client blocked (#3454).
    count_requests_while_blocked: bool = True
    # Offer journal: a `from` cursor whose event fell out of the 24-hour window is refused
    # ("reject", 400 VALIDATION_ERROR); "restart" silently reads from the oldest retained event;
    # "reject-404" (404 NotFoundException) and "reject-oauth" (400 in the OAuth format) are the
    # other refusals an integration must take as a gap too.
    expired_offer_cursor: str = "reject"
    # Quantity command FIXED < 1: "task" fails the task with INVALID_OFFER_QUANTITY (2025
    # behaviour); "reject" refuses the whole PUT with 422 INCORRECT_QUANTITY_VALUE (2020).
    quantity_below_one: str = "task"
    # Invoices: "exists" answers 409 to a second POST whenever the form already has a seller
    # invoice (the spec); "scanning" only while the previous file is missing or being scanned.
    invoice_conflict: str = "exists"
    # Blocked seller: "revoke" kills tokens (401, then invalid_grant on refresh);
    # "forbidden" keeps tokens but answers 403 AccessDenied to every user call.
    blocked_seller: str = "revoke"
    # Refreshing twice with the same refresh token (within the grace period) also kills the
    # access token the first refresh produced: each refresh invalidates the grant's current one.
    refresh_kills_sibling_access: bool = True
    # Realism: every payment produces two READY_FOR_PROCESSING events.
    duplicate_ready_event: bool = False
    # Realism: on payment, a FILLED_IN event with an earlier occurredAt lands after
    # READY_FOR_PROCESSING in the journal.
    out_of_order_events: bool = False
    # Realism for the demo: sometimes a buyer pays several forms at once (a merged form).
    merge_checkout_forms: bool = False
    # PATCH /sale/product-offers/{id}: True answers every edit 202 + Location + Retry-After
    # and finishes it asynchronously (the harder case); False answers 200 with the edit done.
    patch_always_async: bool = True
    # POST /sale/product-offers: True answers 202 + Location + Retry-After and publishes when
    # the operation is done (the harder case); False answers 201 with the offer created.
    create_offer_async: bool = True
    # UNCONFIRMED per-user parallelism limit (leaky bucket, section 3) on the resources that
    # have one (``middleware.PER_USER_RESOURCES``: the catalogue): more than this many
    # requests of one user in flight there -> 429. 0 = off (it would make tests flaky).
    max_parallel_requests_per_user: int = 0
    # UNCONFIRMED token-minting limit (section 2.1): more than this many tokens issued for one
    # user within ``token_mint_window_seconds`` -> 429 from /auth/oauth/token. 0 = off.
    max_tokens_per_user: int = 0
    token_mint_window_seconds: int = 3600


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes one emulator instance. Times are seconds."""

    seed: int = 0
    sandbox: bool = False
    access_token_ttl: int = 43199
    refresh_token_ttl: int = 90 * 24 * 3600
    refresh_grace: int = 60
    code_ttl: int = 10
    device_code_ttl: int = 3600
    device_interval: int = 5
    rate_limit_per_minute: int = 9000
    block_seconds: int = 60
    price_changes_per_hour: int = 150_000
    quantity_changes_per_hour: int = 250_000
    publication_changes_per_hour: int = 250_000
    offer_changes_per_minute: int = 9000
    task_completion_delay: float = 0.05
    invoice_scan_seconds: float = 5.0
    # How long (emulated clock) an asynchronous PATCH of a product offer stays IN_PROGRESS.
    patch_processing_seconds: float = 1.0
    # How long an asynchronous POST /sale/product-offers stays IN_PROGRESS.
    create_processing_seconds: float = 1.0
    # Per-seller product-offer writes (POST and PATCH /sale/product-offers, allegro-2026.md 1).
    offer_writes_per_minute: int = 2490
    offer_writes_per_hour: int = 74_700
    clients: dict[str, ClientRegistration] = field(default_factory=default_clients)
    switches: Switches = field(default_factory=Switches)
    start_time: datetime | None = None
    frozen_clock: bool = False
    public_url: str | None = None
    # The latency profile (latency.py): "none" answers at once; "realistic" delays each
    # request by its endpoint group's distribution. The control API switches it at run time.
    latency: str = "none"

    @property
    def host_suffix(self) -> str:
        """The marketplace domain this instance pretends to be."""
        return "allegro.pl.allegrosandbox.pl" if self.sandbox else "allegro.pl"
