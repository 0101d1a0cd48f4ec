-- Instant on MariaDB 10.3.2+.
ALTER TABLE `orders` ADD COLUMN `currency` CHAR(3) NOT NULL DEFAULT 'EUR';
