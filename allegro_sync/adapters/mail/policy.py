"""The e-mail policy the daemon composes its mails with: the standard library's default, with a
header factory that makes each header class once.

``email.headerregistry.HeaderRegistry`` builds a new class (``type(...)``) every time a header
is set or read. A class is a reference cycle, freed only by the cyclic garbage collector, which
the daemon runs rarely (``daemon/runtime.py``): found by the soak (``bench/soak.py``), about 30 KB
of RSS per mail sent (13 classes) piled up until a full collection. The classes depend only on
the header's registered kind, so one per kind serves every mail.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import HeaderRegistry
from typing import Any


class CachingHeaderRegistry(HeaderRegistry):
    """A ``HeaderRegistry`` that builds each specialised header class once."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[type[Any], type[Any]] = {}

    def __getitem__(self, name: str) -> type[Any]:
        kind = self.registry.get(name.lower(), self.default_class)
        made = self._made.get(kind)
        if made is None:
            made = self._made[kind] = super().__getitem__(name)
        return made


MAIL_POLICY = policy.default.clone(header_factory=CachingHeaderRegistry())
