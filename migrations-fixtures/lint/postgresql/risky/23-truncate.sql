-- Empties a table.
TRUNCATE TABLE audit_log;
