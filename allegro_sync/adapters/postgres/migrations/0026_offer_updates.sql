-- Offers that follow their product (issue 17 item 4): the account setting, and the edits wanted.
--
-- update_offers_from_products: when on, a change of a product's name, description, images or
-- parameters in product.upserted is sent to every offer bound to it (PATCH
-- /sale/product-offers/{offerId}), only the fields that changed.
ALTER TABLE accounts ADD COLUMN update_offers_from_products boolean NOT NULL DEFAULT false;

-- offer_updates: one row per offer with an edit to send. The consumer only adds field names
-- (several product changes coalesce into one PATCH per offer); the values are the product's when
-- the PATCH is sent. `fields` is what changed since the last PATCH left, `sending` what the PATCH
-- in flight carries (kept until Allegro finished it, so a crash or a 409 sends it again), and
-- `operation_url` the 202 operation being followed. `due_at` is also the claim's lease.
CREATE TABLE offer_updates (
    offer_id        text        PRIMARY KEY REFERENCES offers (id) ON DELETE CASCADE,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    product_id      text        NOT NULL,
    fields          text[]      NOT NULL DEFAULT '{}',
    sending         text[],
    operation_url   text,
    attempts        integer     NOT NULL DEFAULT 0,
    due_at          timestamptz NOT NULL DEFAULT now(),
    queued_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offer_updates_due ON offer_updates (due_at);

CREATE FUNCTION offer_updates_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allegro_sync_offer_updates', '');
    RETURN NULL;
END $$;
CREATE TRIGGER offer_updates_notify AFTER INSERT ON offer_updates
    FOR EACH STATEMENT EXECUTE FUNCTION offer_updates_notify();
