"""The AsyncAPI 3.0 document of the message contract, generated: `python scripts/asyncapi.py`.

Made from ``allegro_sync/contract.py`` (the models, their JSON schemas and the routing keys) and
``allegro_sync/adapters/broker/topology.py`` (the exchanges and queues), and written to
``docs/asyncapi.json``; ``--check`` only compares and exits 1 when the committed file is stale
(``tests/unit/test_contract.py`` does the same).
"""

from __future__ import annotations

import inspect
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, Literal

from pydantic.json_schema import models_json_schema

from allegro_sync import contract
from allegro_sync.adapters.broker import topology

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.json"
AMQP = "0.3.0"  # the AMQP bindings' version

Action = Literal["send", "receive"]
# (exchange, what the exchange is for, its messages, what the daemon does with them, the queue
# the daemon consumes them from)
EXCHANGES: list[tuple[str, str, dict[str, type[contract.Message]], list[Action], str | None]] = [
    (
        topology.ERP_EXCHANGE,
        "The ERP publishes, the daemon consumes. `message_id` is set by the producer: it is the"
        " message's idempotency key, unique per message type (routing key). A message whose type"
        " and id were already handled is a redelivery and is dropped: a retry of the same message"
        " reuses its id, every new message needs an id of its own; the same id under two types"
        " names two messages. A message that can never succeed (invalid JSON, a schema mismatch,"
        " a body over its size limit, a value out of range) goes to the dead letters at once."
        f" `invoice.added` is consumed from `{topology.ERP_INVOICE_QUEUE}`, with a small"
        " prefetch.",
        contract.ERP_MESSAGES,
        ["receive"],
        topology.ERP_QUEUE,
    ),
    (
        topology.JOURNAL_EXCHANGE,
        "The daemon's pollers publish what Allegro's event journals say (runs of up to 100"
        " events); its consumers read them. A run that fails is split into single-event"
        " messages with the event's own id (`<journal>-event:<account>:<event id>`).",
        contract.JOURNAL_MESSAGES,
        ["send", "receive"],
        topology.JOURNAL_QUEUE,
    ),
    (
        topology.EVENTS_EXCHANGE,
        "The daemon publishes for the ERP, with publisher confirms, through its outbox;"
        f" `message_id` is stable per fact. Queued in `{topology.ERP_OUTBOUND_QUEUE}` until the"
        " ERP consumes them.",
        contract.EVENTS,
        ["send"],
        None,
    ),
]


def _doc(model: type[contract.Message]) -> tuple[str, str]:
    text = inspect.cleandoc(model.__doc__ or "")
    summary = " ".join(text.split("\n\n")[0].split())
    return summary, text


def _schemas() -> dict[str, Any]:
    models = [m for _, _, messages, _, _ in EXCHANGES for m in messages.values()]
    _, top = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    return dict(top["$defs"])


def document() -> dict[str, Any]:
    """The AsyncAPI document, as a JSON object."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for exchange, about, routed, actions, queue in EXCHANGES:
        for routing_key, model in routed.items():
            summary, text = _doc(model)
            messages[routing_key] = {
                "name": routing_key,
                "title": model.__name__,
                "summary": summary,
                "description": text,
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
                "bindings": {"amqp": {"messageType": routing_key, "bindingVersion": AMQP}},
            }
            channels[routing_key] = {
                "address": routing_key,
                "title": f"{routing_key} on {exchange}",
                "description": about,
                "messages": {routing_key: {"$ref": f"#/components/messages/{routing_key}"}},
                "bindings": {
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {
                            "name": exchange,
                            "type": "topic",
                            "durable": True,
                            "autoDelete": False,
                            "vhost": "/",
                        },
                        "bindingVersion": AMQP,
                    }
                },
            }
            for action in actions:
                operation: dict[str, Any] = {
                    "action": action,
                    "channel": {"$ref": f"#/channels/{routing_key}"},
                    "summary": (
                        f"The daemon {'publishes' if action == 'send' else 'consumes'}"
                        f" {routing_key}"
                        + (f" (from the queue {queue})." if action == "receive" else ".")
                    ),
                    "messages": [{"$ref": f"#/channels/{routing_key}/messages/{routing_key}"}],
                    "bindings": {
                        "amqp": (
                            {"ack": True, "bindingVersion": AMQP}
                            if action == "receive"
                            else {"deliveryMode": 2, "mandatory": True, "bindingVersion": AMQP}
                        )
                    },
                }
                operations[f"{action}_{routing_key.replace('.', '_')}"] = operation
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "allegro-sync",
            "version": version("allegro-sync"),
            "description": (
                "The messages the allegro-sync daemon consumes and publishes on RabbitMQ"
                " (design.md section 4). Every exchange is a durable topic; every queue a"
                " durable quorum queue whose rejected messages land in"
                f" `{topology.DEAD_LETTER_QUEUE}` with an `x-error` header. Generated from"
                " `allegro_sync/contract.py` by `python scripts/asyncapi.py`: do not edit."
            ),
        },
        "servers": {
            "local": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "description": "The default `ALLEGRO_SYNC_AMQP_URL`.",
            }
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": _schemas()},
    }


def render() -> str:
    """The document as it is committed."""
    return json.dumps(document(), indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    """Write the document, or with ``--check`` say whether the committed one is current."""
    text = render()
    if "--check" in sys.argv[1:]:
        if DOCUMENT.exists() and DOCUMENT.read_text("utf-8") == text:
            return 0
        print(f"{DOCUMENT} is stale: run python scripts/asyncapi.py", file=sys.stderr)
        return 1
    DOCUMENT.parent.mkdir(exist_ok=True)
    DOCUMENT.write_text(text, "utf-8")
    print(f"wrote {DOCUMENT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
