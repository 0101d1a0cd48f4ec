-- decimal(10,2) to decimal(14,4): table copied.
ALTER TABLE `orders` MODIFY `total` DECIMAL(14, 4) NOT NULL;
