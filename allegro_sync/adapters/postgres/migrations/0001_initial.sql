-- The first schema: everything design.md section 1 needs to store.

CREATE TABLE accounts (
    id                          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    allegro_user_id             text        NOT NULL,
    sandbox                     boolean     NOT NULL,
    login                       text        NOT NULL,
    name                        text        NOT NULL,
    active                      boolean     NOT NULL DEFAULT true,
    deactivation_reason         text,
    deactivated_at              timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    -- settings (design.md section 4); switches default to false
    orders_from                 timestamptz,
    auto_create_orders          boolean     NOT NULL DEFAULT false,
    send_order_emails           boolean     NOT NULL DEFAULT false,
    bind_offers_by_ean          boolean     NOT NULL DEFAULT false,
    bind_offers_by_ean_since    timestamptz,
    stock_control               boolean     NOT NULL DEFAULT false,
    raise_quantity_on_erp_sync  boolean     NOT NULL DEFAULT false,
    auto_renew                  boolean     NOT NULL DEFAULT false,
    renew_with_current_price    boolean     NOT NULL DEFAULT false,
    do_not_renew_default        boolean     NOT NULL DEFAULT true,
    send_customer_card          boolean     NOT NULL DEFAULT false,
    only_customers_with_nip     boolean     NOT NULL DEFAULT false,
    sync_prices                 boolean     NOT NULL DEFAULT false,
    sync_prices_since           timestamptz,
    price_list                  text        NOT NULL DEFAULT 'default',
    default_category_id         text,
    after_sales                 jsonb,
    shipping_rates_id           text,
    address                     jsonb,
    -- e-mail addresses Allegro allows besides the buyer, and the extra recipients chosen (O2)
    allowed_extra_emails        text[]      NOT NULL DEFAULT '{}',
    extra_order_email_recipients text[]     NOT NULL DEFAULT '{}',
    UNIQUE (allegro_user_id, sandbox)
);

-- OAuth tokens, encrypted with SECRET_KEY; never stored in plain text.
CREATE TABLE account_tokens (
    account_id          bigint      PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    access_token_enc    bytea       NOT NULL,
    refresh_token_enc   bytea       NOT NULL,
    expires_at          timestamptz NOT NULL,
    refreshed_at        timestamptz NOT NULL DEFAULT now(),
    generation          integer     NOT NULL DEFAULT 1
);

-- Pending browser OAuth connections: single-use state with its PKCE verifier.
CREATE TABLE oauth_states (
    state_hash          text        PRIMARY KEY,
    code_verifier_enc   bytea       NOT NULL,
    sandbox             boolean     NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);

-- Where each account's journals were read up to.
CREATE TABLE journal_cursors (
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    journal         text        NOT NULL CHECK (journal IN ('order', 'offer')),
    last_event_id   text,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_id, journal)
);

CREATE TABLE price_lists (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO price_lists (id, name) VALUES ('default', 'Default');

CREATE TABLE products (
    id          text        PRIMARY KEY,
    ean         text,
    name        text        NOT NULL,
    image_url   text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX products_ean ON products (ean) WHERE ean IS NOT NULL;

-- ERP stock per product; version guards against older messages.
CREATE TABLE product_stock (
    product_id  text        PRIMARY KEY,
    quantity    integer     NOT NULL CHECK (quantity >= 0),
    version     bigint      NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE product_prices (
    product_id  text            NOT NULL,
    price_list  text            NOT NULL,
    price       numeric(14, 2)  NOT NULL CHECK (price >= 0),
    currency    text            NOT NULL,
    version     bigint          NOT NULL,
    updated_at  timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, price_list)
);

CREATE TABLE offers (
    id              text        PRIMARY KEY,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            text        NOT NULL,
    format          text        NOT NULL,
    status          text        NOT NULL,
    ended_at        timestamptz,
    ended_by        text,
    stock           integer     NOT NULL DEFAULT 0,
    price           numeric(14, 2),
    currency        text,
    image_url       text,
    external_id     text,
    ean             text,
    ean_checked_at  timestamptz,
    product_id      text,
    bound_at        timestamptz,
    do_not_renew    boolean     NOT NULL DEFAULT true,
    sync_price      boolean     NOT NULL DEFAULT false,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX offers_account ON offers (account_id);
CREATE INDEX offers_product ON offers (product_id) WHERE product_id IS NOT NULL;

CREATE TABLE customers (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id      bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    allegro_buyer_id text       NOT NULL,
    email           text        NOT NULL,
    first_name      text,
    last_name       text,
    company         text,
    nip             text,
    country_code    text,
    type            text        NOT NULL CHECK (type IN ('domestic', 'intra_eu', 'extra_eu')),
    address         jsonb,
    active          boolean     NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account_id, allegro_buyer_id)
);

CREATE TABLE orders (
    checkout_form_id    uuid        PRIMARY KEY,
    account_id          bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    status              text        NOT NULL,
    revision            text,
    bought_at           timestamptz,
    allegro_updated_at  timestamptz,
    payment_type        text,
    paid_at             timestamptz,
    total               numeric(14, 2),
    currency            text,
    invoice_required    boolean     NOT NULL DEFAULT false,
    customer_id         bigint      REFERENCES customers (id) ON DELETE SET NULL,
    superseded_by       uuid,
    announced_at        timestamptz,
    cancelled_at        timestamptz,
    form                jsonb       NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX orders_account_bought ON orders (account_id, bought_at);

CREATE TABLE order_lines (
    id                  text            PRIMARY KEY,
    checkout_form_id    uuid            NOT NULL REFERENCES orders (checkout_form_id) ON DELETE CASCADE,
    offer_id            text            NOT NULL,
    product_id          text,
    ean                 text,
    name                text            NOT NULL,
    quantity            integer         NOT NULL,
    unit_price          numeric(14, 2)  NOT NULL,
    currency            text            NOT NULL,
    image_url           text
);
CREATE INDEX order_lines_form ON order_lines (checkout_form_id);

CREATE TABLE event_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id  bigint      REFERENCES accounts (id) ON DELETE CASCADE,
    category    text        NOT NULL
        CHECK (category IN ('accounts', 'offers', 'orders', 'stock', 'prices', 'customers')),
    level       text        NOT NULL CHECK (level IN ('info', 'warning', 'error')),
    code        text        NOT NULL,
    message     text        NOT NULL,
    details     jsonb       NOT NULL DEFAULT '{}',
    -- set for entries that must be written once per fact (e.g. a renewal refusal)
    dedupe_key  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX event_log_account ON event_log (account_id, created_at DESC);
CREATE UNIQUE INDEX event_log_dedupe ON event_log (account_id, dedupe_key) WHERE dedupe_key IS NOT NULL;

-- Processed message ids: a redelivered message finds its row and is a no-op.
CREATE TABLE inbox (
    consumer        text        NOT NULL,
    message_id      text        NOT NULL,
    processed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, message_id)
);

-- Messages to publish, written in the same transaction as the state they announce.
CREATE TABLE outbox (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      text        NOT NULL UNIQUE,
    exchange        text        NOT NULL,
    routing_key     text        NOT NULL,
    payload         jsonb       NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('allegro_sync_outbox', '');
    RETURN NULL;
END $$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();
