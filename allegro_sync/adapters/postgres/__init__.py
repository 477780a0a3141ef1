"""PostgreSQL: the pool, migrations, and the plumbing SQL of each table in a module of its own.

``<table>.py`` holds that table's statements, each named with a one-line description, either as
a function or as a constant its callers execute by name (``accounts``, ``account_tokens``,
``oauth_states``, ``journal_cursors``, ``inbox``, ``orders``, ``invoices``, ``outbox``,
``mail_outbox``, ``event_log``, ``catalog``, ``offers``, ``offer_changes``, ``renewals``, ...).
``daemon/`` holds no SQL (``tests/unit/test_sql_homes.py`` checks it). Set-based statements that
are the rule itself stay beside their decision: the batch reads and writes of
``handlers/stock.py``, ``prices.py`` and ``renewal.py`` (``READ``, ``SWEEP``).
The pollers' election (one advisory lock per account and journal) stays in ``daemon/pollers.py``;
``advisory_locks.py`` only holds the locks on one connection.
"""
