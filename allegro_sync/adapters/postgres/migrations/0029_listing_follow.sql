-- Listings (issue 17), carried out more safely and with fewer requests:
-- * claim_token: the lease's holder; a step records itself only while its lease is still its own
--   (a step longer than the lease never POSTs after another worker took the row over);
-- * checks: looks at Allegro's offer list (GET /sale/offers by offer.id, many listings in one
--   request) since the operation was last read; past a few the operation itself is read;
-- * following_since: when Allegro accepted the offer (202); a listing following for longer than
--   the daemon waits fails with a clear reason;
-- * prior_offer_ids: the account's mirrored offers with the listing's external id when its POST
--   was first sent, which a retry after a lost answer never adopts as its own;
-- * step_failures: unexpected failures of a step in a row (bounded, then the listing fails);
-- * propose: Allegro did not know the EAN, so every further POST carries the product proposal.
ALTER TABLE listings
    ADD COLUMN claim_token     uuid,
    ADD COLUMN checks          integer     NOT NULL DEFAULT 0,
    ADD COLUMN following_since timestamptz,
    ADD COLUMN prior_offer_ids text[]      NOT NULL DEFAULT '{}',
    ADD COLUMN step_failures   integer     NOT NULL DEFAULT 0,
    ADD COLUMN propose         boolean     NOT NULL DEFAULT false;

-- the offers of an account carrying an external id (what a listing's first POST remembers)
CREATE INDEX offers_external_id ON offers (account_id, external_id) WHERE external_id IS NOT NULL;
