-- NOT NULL without default: inserts of the running application fail.
ALTER TABLE `users` ADD COLUMN `tenantId` VARCHAR(191) NOT NULL;
