-- The running application still queries the old table name.
ALTER TABLE orders RENAME TO purchases;
