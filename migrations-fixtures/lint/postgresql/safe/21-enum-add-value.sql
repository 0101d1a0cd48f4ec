-- Adding an enum value is a catalog change.
ALTER TYPE status ADD VALUE 'archived';
