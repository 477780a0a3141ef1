"""The per-account event log (A11): its SQL and types are in ``adapters/postgres/event_log``."""

from allegro_sync.adapters.postgres.event_log import *  # noqa: F403
