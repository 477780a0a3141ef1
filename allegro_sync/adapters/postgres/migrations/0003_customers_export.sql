-- The customer list and its export (design.md C5) page by id within a filter; these keep the
-- common filters (one account, a date range) from scanning every customer of every account.
CREATE INDEX customers_account_id ON customers (account_id, id);
CREATE INDEX customers_created_at ON customers (created_at, id);
