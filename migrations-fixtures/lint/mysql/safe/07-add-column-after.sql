-- Instant at any position on MariaDB 10.4+.
ALTER TABLE `users` ADD COLUMN `nickname` VARCHAR(50) NULL AFTER `name`;
