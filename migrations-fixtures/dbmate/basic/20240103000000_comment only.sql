-- A header comment is allowed before the up marker.
-- migrate:up
-- Nothing to change: the column was added by hand before migrations existed.

-- migrate:down
