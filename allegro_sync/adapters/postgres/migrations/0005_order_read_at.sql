-- When the stored checkout form was read from Allegro: an older read never overwrites a newer
-- one (messages may be handled out of order after a retry).
ALTER TABLE orders ADD COLUMN form_read_at timestamptz;
