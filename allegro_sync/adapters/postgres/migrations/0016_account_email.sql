-- order.message e-mails come from the seller (issue 13 item 6): the account's main address
-- (``GET /me`` ``email``, stored when the account is connected, or read on its first message
-- when it was connected before), or an additional address Allegro allows for it that the
-- message names. ``MAIL_FROM`` stays the envelope sender, and the From only while the account's
-- address is unknown.
ALTER TABLE accounts ADD COLUMN email text;

-- The From of a queued mail (NULL: ``MAIL_FROM``).
ALTER TABLE mail_outbox ADD COLUMN sender text;
