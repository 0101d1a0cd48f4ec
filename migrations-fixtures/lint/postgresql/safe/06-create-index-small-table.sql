-- A plain index on a 250-row table takes milliseconds.
CREATE INDEX countries_name_idx ON countries (name);
