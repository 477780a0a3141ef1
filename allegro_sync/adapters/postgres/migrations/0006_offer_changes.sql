-- Offer changes on their way to Allegro (design.md S1-S5, P1-P2; issue 7).
--
-- offer_changes: the desired value per (offer, kind), latest wins. An ERP message upserts it in
-- the consumer's transaction, so a crash loses none. While a command carries the row,
-- command_id and sent_seq say which command and which version of the value; a newer value
-- arriving meanwhile bumps seq and is sent by a later command once this one is done.
CREATE SEQUENCE offer_change_seq;

CREATE TABLE offer_changes (
    offer_id    text        NOT NULL REFERENCES offers (id) ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('quantity', 'price', 'publication')),
    account_id  bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    -- quantity: digits; price: the amount ("12.34", with currency); publication: END | ACTIVATE
    value       text        NOT NULL,
    currency    text,
    seq         bigint      NOT NULL DEFAULT nextval('offer_change_seq'),
    desired_at  timestamptz NOT NULL DEFAULT now(),
    command_id  uuid,
    sent_seq    bigint,
    attempts    integer     NOT NULL DEFAULT 0,
    not_before  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (offer_id, kind)
);
-- What the batcher claims: ready rows grouped by the command they can share.
CREATE INDEX offer_changes_ready ON offer_changes (account_id, kind, value, currency)
    WHERE command_id IS NULL;
CREATE INDEX offer_changes_command ON offer_changes (command_id) WHERE command_id IS NOT NULL;

-- Batch commands, persisted before the PUT: a restart re-sends the same id (Allegro answers 409
-- if the first attempt arrived), never a second command.
CREATE TABLE offer_commands (
    id              uuid        PRIMARY KEY,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    kind            text        NOT NULL CHECK (kind IN ('quantity', 'price', 'publication')),
    payload         jsonb       NOT NULL,
    offers          text[]      NOT NULL,
    state           text        NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'sent', 'done')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_check_at   timestamptz NOT NULL DEFAULT now(),
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    done_at         timestamptz,
    trace_id        text
);
CREATE INDEX offer_commands_open ON offer_commands (next_check_at) WHERE state <> 'done';

CREATE FUNCTION offer_changes_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allegro_sync_offer_changes', '');
    RETURN NULL;
END $$;

CREATE TRIGGER offer_changes_notify AFTER INSERT OR UPDATE ON offer_changes
    FOR EACH STATEMENT EXECUTE FUNCTION offer_changes_notify();

-- Renewal (S3, S4): offers whose renewal must be (re)considered. Filled by the mirror (an offer
-- that became ENDED, or ACTIVE again after a requested renewal) and by restocks.
CREATE TABLE renewal_candidates (
    offer_id    text        PRIMARY KEY,
    queued_at   timestamptz NOT NULL DEFAULT now()
);

-- A renewal asked for one ending of an offer; done when the mirror shows it ACTIVE again (after
-- OFFER_ACTIVATED), not when the publication task succeeded.
CREATE TABLE offer_renewals (
    offer_id        text        PRIMARY KEY REFERENCES offers (id) ON DELETE CASCADE,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    ended_at        timestamptz NOT NULL,
    state           text        NOT NULL CHECK (state IN ('requested', 'renewed')),
    requested_at    timestamptz NOT NULL DEFAULT now(),
    renewed_at      timestamptz
);

CREATE FUNCTION offers_renewal_candidate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'ENDED'
       OR (NEW.status = 'ACTIVE'
           AND EXISTS (SELECT 1 FROM offer_renewals r
                        WHERE r.offer_id = NEW.id AND r.state = 'requested')) THEN
        INSERT INTO renewal_candidates (offer_id) VALUES (NEW.id) ON CONFLICT DO NOTHING;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER offers_renewal_insert AFTER INSERT ON offers
    FOR EACH ROW WHEN (NEW.status = 'ENDED') EXECUTE FUNCTION offers_renewal_candidate();
-- Also when a user binds an ended offer or switches "do not renew" off: consider it again.
CREATE TRIGGER offers_renewal_update AFTER UPDATE OF status, product_id, do_not_renew ON offers
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status
                       OR OLD.product_id IS DISTINCT FROM NEW.product_id
                       OR OLD.do_not_renew IS DISTINCT FROM NEW.do_not_renew)
    EXECUTE FUNCTION offers_renewal_candidate();

CREATE FUNCTION renewal_candidates_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allegro_sync_renewal', '');
    RETURN NULL;
END $$;

CREATE TRIGGER renewal_candidates_notify AFTER INSERT ON renewal_candidates
    FOR EACH STATEMENT EXECUTE FUNCTION renewal_candidates_notify();
