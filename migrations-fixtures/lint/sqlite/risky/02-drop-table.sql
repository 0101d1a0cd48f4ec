-- Drops a table and its rows.
DROP TABLE "Post";
