-- SET NOT NULL on a 120 MB table that was never analysed.
ALTER TABLE audit_log ALTER COLUMN payload SET NOT NULL;
