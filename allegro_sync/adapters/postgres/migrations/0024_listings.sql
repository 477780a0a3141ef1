-- Listings (issue 17): offers created from ERP products, one per (product, account).
--
-- The row is the intent, written in the consumer's transaction before any request to Allegro;
-- the listing service moves it on: pending (nothing sent yet) -> posting (a POST may have
-- reached Allegro: a retry first looks for the offer by external id) -> following (Allegro
-- accepted it, 202: the operation is read until done) -> listed | failed (Allegro refused;
-- errors holds its error objects). A failed listing asked for again starts over.
CREATE TABLE listings (
    id              bigserial   PRIMARY KEY,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    product_id      text        NOT NULL,
    price           numeric(14, 2) NOT NULL,
    currency        text        NOT NULL,
    quantity        integer     NOT NULL,
    category_id     text,
    publish         boolean     NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'posting', 'following', 'listed', 'failed')),
    -- the offer's external.id on Allegro: how a retry finds an offer a lost answer created
    external_id     text        NOT NULL,
    offer_id        text,
    operation_path  text,
    offer_status    text,
    errors          jsonb,
    trace_id        text,
    attempts        integer     NOT NULL DEFAULT 0,
    due_at          timestamptz NOT NULL DEFAULT now(),
    claimed_until   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (product_id, account_id)
);
CREATE INDEX listings_open ON listings (due_at) WHERE state IN ('pending', 'posting', 'following');
CREATE INDEX listings_account ON listings (account_id, state);

CREATE FUNCTION listings_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allegro_sync_listings', '');
    RETURN NULL;
END $$;

CREATE TRIGGER listings_notify AFTER INSERT OR UPDATE OF state ON listings
    FOR EACH STATEMENT EXECUTE FUNCTION listings_notify();
