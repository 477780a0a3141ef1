-- Buyer messages under Allegro's rules of 2 March 2026 (issue 13, item 6).
--
-- Allegro stops e-mails that carry an invoice or repeat its own notices (payment received, order
-- processed or sent, shipment status, a rating request). The daemon's order notifications
-- (order received, status changed, cancelled, invoice added) were all of that kind and are gone:
-- the invoice reaches the buyer through the invoice upload, the status through the checkout
-- form's fulfillment status. What is left is the seller's own correspondence about an order, the
-- ERP's ``order.message``, sent by e-mail or through Allegro's message centre, as the account
-- chooses here.
ALTER TABLE accounts
    ADD COLUMN order_message_channel text NOT NULL DEFAULT 'email'
        CHECK (order_message_channel IN ('email', 'message_centre'));

-- Messages written through the message centre, one row per message (``dedupe_key`` names it:
-- the form, subject and body), so a redelivered ``order.message`` is not written twice.
CREATE TABLE order_messages (
    dedupe_key          text        PRIMARY KEY,
    account_id          bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    checkout_form_id    uuid        NOT NULL REFERENCES orders (checkout_form_id) ON DELETE CASCADE,
    allegro_message_id  text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz
);

-- The switch, in the event log of every account that had order e-mails on: why they stop.
INSERT INTO event_log (account_id, category, level, code, message, dedupe_key)
SELECT id, 'orders', 'warning', 'order_emails_narrowed',
       'Order notification e-mails (order received, status, cancellation, invoice) are no longer'
       || ' sent: since 2 March 2026 Allegro stops e-mails that carry an invoice or repeat its own'
       || ' notices. The buyer gets the invoice through the invoice upload and the status through'
       || ' the order''s fulfillment status; the ERP''s own messages about an order (order.message)'
       || ' still go, by e-mail or through Allegro''s message centre (order_message_channel).',
       'order-emails-narrowed-2026-03-02'
  FROM accounts
 WHERE send_order_emails;
