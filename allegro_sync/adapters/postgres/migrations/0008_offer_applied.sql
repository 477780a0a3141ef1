-- The mirror's version clock for the values our own commands set (issue 19).
--
-- A command's report says Allegro applied a quantity or price; the mirror takes the value at
-- once (offer_changes.mirror_applied) and remembers when: a listing read before that moment may
-- show the value from before the command, so it no longer overwrites stock or price (its other
-- fields still count, guarded by mirrored_at as before). The applied value itself is kept too:
-- a mirror that differs from it was changed by someone else (a purchase, the seller), which the
-- reconciliation must not undo by raising the quantity back.
ALTER TABLE offers
    ADD COLUMN applied_stock    integer,
    ADD COLUMN stock_applied_at timestamptz,
    ADD COLUMN applied_price    numeric(14, 2),
    ADD COLUMN price_applied_at timestamptz;
