-- Kept so that the version sequence matches production.
/* nothing to run */
