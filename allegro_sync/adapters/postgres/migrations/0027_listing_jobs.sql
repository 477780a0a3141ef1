-- Listing many products at once (issue 17 item 3): a job per run of "every product with an EAN
-- and no offer on the account". Its items are written in one transaction with the listings they
-- ask for (table listings), which the listing service carries out and a restart goes on with;
-- a job's progress is its items' listings' states. An item without a listing says why
-- (`skipped`: no price on the account's price list, no stock to publish).
CREATE TABLE listing_jobs (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    publish         boolean     NOT NULL,
    total           integer     NOT NULL DEFAULT 0,
    skipped         integer     NOT NULL DEFAULT 0,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX listing_jobs_account ON listing_jobs (account_id, id);

CREATE TABLE listing_job_items (
    job_id          bigint      NOT NULL REFERENCES listing_jobs (id) ON DELETE CASCADE,
    product_id      text        NOT NULL,
    skipped         text,
    PRIMARY KEY (job_id, product_id)
);
