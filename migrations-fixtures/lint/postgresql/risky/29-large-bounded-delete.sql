-- Deletes most of a 120 MB table in one transaction (bounded, but huge).
DELETE FROM audit_log WHERE created_at < now() - interval '90 days';
