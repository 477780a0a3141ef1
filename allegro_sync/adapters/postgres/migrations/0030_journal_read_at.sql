-- When each journal was last read (Allegro's time: the Date of its answer), not only when its
-- cursor last moved (updated_at). A cursor still NULL (no event read yet) cannot be refused by
-- Allegro when it falls out of the offer journal's 24 hours; read_at tells the poller that the
-- journal went unread for longer than it keeps (daemon/pollers.py). Existing rows take the
-- time their cursor last moved: at worst one sweep too many, never a gap unseen.
ALTER TABLE journal_cursors ADD COLUMN read_at timestamptz;
UPDATE journal_cursors SET read_at = updated_at;
ALTER TABLE journal_cursors ALTER COLUMN read_at SET NOT NULL;
ALTER TABLE journal_cursors ALTER COLUMN read_at SET DEFAULT now();
