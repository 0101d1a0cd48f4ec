-- DROP INDEX without CONCURRENTLY takes ACCESS EXCLUSIVE on orders.
DROP INDEX "orders_user_id_idx";
