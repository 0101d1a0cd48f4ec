-- REINDEX without CONCURRENTLY blocks writes to orders.
REINDEX TABLE orders;
