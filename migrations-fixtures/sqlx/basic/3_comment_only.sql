-- Kept so that the version sequence matches production: this change was
-- made by hand before migrations existed.
/* nothing to run */
