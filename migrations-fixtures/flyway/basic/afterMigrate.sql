-- A Flyway callback: dbdeploy does not run callbacks and says so.
SELECT 1;
