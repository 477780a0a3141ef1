-- Retention (issue 14, finding 7): the tables that only grew are pruned by one replica in small
-- batches (daemon/retention.py), oldest rows first. Each index below lets a batch find its oldest
-- rows without reading the table: the inbox and the event log by the time a row was written, the
-- mail outbox by when a mail was sent or given up, the message centre's rows by when they were
-- written (or, for one Allegro refused, claimed), the batch commands by when their report was settled. The partial indexes hold only the
-- rows that may go (unfinished work is never pruned).
CREATE INDEX inbox_processed_at ON inbox (processed_at);
CREATE INDEX event_log_created_at ON event_log (created_at);
CREATE INDEX mail_outbox_finished ON mail_outbox ((COALESCE(sent_at, failed_at)))
    WHERE sent_at IS NOT NULL OR failed_at IS NOT NULL;
CREATE INDEX order_messages_settled ON order_messages ((COALESCE(sent_at, created_at)));
CREATE INDEX offer_commands_done_at ON offer_commands (done_at) WHERE state = 'done';
