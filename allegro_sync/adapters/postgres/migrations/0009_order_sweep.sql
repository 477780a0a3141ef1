-- The order sweep (issue 13): checkout forms updated since the last sweep, so that a form whose
-- event Allegro never wrote (AA#8623) still becomes an order.
--
-- orders_swept_to: the sweep has looked at every form updated before this moment (Allegro's
-- updatedAt). A new account starts at its connection; an account connected before this
-- migration at the migration. It does not move while the account is off, so the first sweep
-- after reactivation covers the whole time it was off.
ALTER TABLE accounts
    ADD COLUMN orders_swept_to timestamptz NOT NULL DEFAULT now();
