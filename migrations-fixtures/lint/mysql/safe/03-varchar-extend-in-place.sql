-- varchar(50) to varchar(60) keeps a 1-byte length prefix: in place.
ALTER TABLE `orders` MODIFY `note` VARCHAR(60) NULL;
