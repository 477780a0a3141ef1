-- Invoices from the ERP (invoice.added) and buyer e-mail notifications (design.md O2).

-- One row per ERP invoice. The Allegro invoice id is stored as soon as the metadata POST
-- answers, before the file is sent, so a redelivery after a crash between the two resumes
-- with the file upload instead of meeting "the order already has an invoice".
CREATE TABLE invoices (
    checkout_form_id    uuid        NOT NULL REFERENCES orders (checkout_form_id) ON DELETE CASCADE,
    invoice_number      text        NOT NULL,
    account_id          bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    file_name           text        NOT NULL,
    allegro_invoice_id  text,
    size_bytes          integer,
    sha256              text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    uploaded_at         timestamptz,
    PRIMARY KEY (checkout_form_id, invoice_number)
);

-- E-mails to send, written in the transaction of the fact they announce; the mail relay sends
-- them over SMTP. ``dedupe_key`` names the fact (e.g. ``invoice:<form>:<number>``), so a fact
-- announced twice is mailed once.
CREATE TABLE mail_outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint      REFERENCES accounts (id) ON DELETE CASCADE,
    dedupe_key      text        NOT NULL UNIQUE,
    recipients      text[]      NOT NULL CHECK (cardinality(recipients) > 0),
    subject         text        NOT NULL,
    body            text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 0,
    -- also a lease: a relay that claims a row pushes this forward before sending
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    failed_at       timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mail_outbox_due ON mail_outbox (next_attempt_at)
    WHERE sent_at IS NULL AND failed_at IS NULL;
