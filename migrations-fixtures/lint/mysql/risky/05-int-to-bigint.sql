-- INT to BIGINT: table copied while writes wait.
ALTER TABLE `orders` MODIFY `user_id` BIGINT NOT NULL;
