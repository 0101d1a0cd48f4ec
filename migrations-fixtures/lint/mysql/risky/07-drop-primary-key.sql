-- Dropping the primary key alone copies the table.
ALTER TABLE `orders` DROP PRIMARY KEY;
