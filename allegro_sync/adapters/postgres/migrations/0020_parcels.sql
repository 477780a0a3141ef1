-- Parcels sent with Allegro (issue 16, items 2 and 3): shipment.requested becomes a
-- create command of Allegro's shipment management, followed until it ends, then its label.

-- The sender printed on labels ({name, company, street, postal_code, city, country_code, phone,
-- email}) and the package used when a request names none ({type, length, width, height,
-- weight}); NULL: not set (a request then needs its own packages; without a sender none can go).
ALTER TABLE accounts ADD COLUMN shipping_sender jsonb;
ALTER TABLE accounts ADD COLUMN default_package jsonb;

-- One row per requested parcel. ``command_id`` is chosen and stored in the transaction that
-- takes the ERP's message, before any request: every attempt (after a crash too) sends the
-- same command, which Allegro takes as the same one, so a parcel is never created twice.
-- ``status``: requested (the command is to be sent), creating (sent, followed until it ends),
-- created (Allegro made the parcel and its label is stored), failed (Allegro refused it),
-- cancelling (a cancel command is to be sent or followed), cancelled.
-- ``next_attempt_at`` is both the schedule and the lease of the service that moves the rows.
CREATE TABLE parcels (
    id                  bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id          bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    checkout_form_id    uuid        NOT NULL REFERENCES orders (checkout_form_id) ON DELETE CASCADE,
    command_id          uuid        NOT NULL UNIQUE,
    -- the create command's input as sent (ShipmentCreateRequestDto)
    request             jsonb       NOT NULL,
    label_format        text        NOT NULL CHECK (label_format IN ('PDF', 'ZPL')),
    status              text        NOT NULL DEFAULT 'requested'
                                    CHECK (status IN ('requested', 'creating', 'created',
                                                      'failed', 'cancelling', 'cancelled')),
    next_attempt_at     timestamptz NOT NULL DEFAULT now(),
    attempts            integer     NOT NULL DEFAULT 0,
    allegro_shipment_id text        UNIQUE,
    waybill             text,
    carrier_id          text,
    label               bytea,
    -- Allegro's refusal: its words, its error list, its trace id
    reason              text,
    errors              jsonb,
    trace_id            text,
    cancel_command_id   uuid        UNIQUE,
    cancel_sent_at      timestamptz,
    pickup_id           text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX parcels_due ON parcels (next_attempt_at)
    WHERE status IN ('requested', 'creating', 'cancelling');
CREATE INDEX parcels_form ON parcels (checkout_form_id);
