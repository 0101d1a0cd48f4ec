-- varchar(50) to varchar(500) changes the length prefix: table copied while writes wait.
ALTER TABLE `orders` MODIFY `note` VARCHAR(500) NULL;
