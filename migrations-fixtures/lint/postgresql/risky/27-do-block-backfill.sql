-- A backfill of every row hidden in a DO block.
DO $$
BEGIN
  UPDATE users SET status = 'active';
END $$;
