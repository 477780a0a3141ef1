-- The offer mirror (design.md O3, O4): when each row was last read from Allegro, so that an older
-- read (a slow listing page, a reordered event) never overwrites a newer one; and the keyset the
-- admin list pages by within an account.
ALTER TABLE offers ADD COLUMN mirrored_at timestamptz;
CREATE INDEX offers_account_id ON offers (account_id, id);
