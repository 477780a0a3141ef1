-- The inbox keyed by message type and id (issue 14, finding 15).
--
-- A message_id was the idempotency key across all types of a consumer: an ERP reusing an id for
-- a message of another type (a stock change and a price change both "42") had the later one
-- dropped as a redelivery. The contract now says an id is unique per message type; the inbox
-- claims (consumer, type, id). Rows claimed before this migration have no type (''): a message
-- redelivered across the upgrade still finds them (inbox.claim looks at both).
ALTER TABLE inbox ADD COLUMN message_type text NOT NULL DEFAULT '';
ALTER TABLE inbox DROP CONSTRAINT inbox_pkey;
ALTER TABLE inbox ADD PRIMARY KEY (consumer, message_type, message_id);
