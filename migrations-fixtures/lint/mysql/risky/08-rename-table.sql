-- The running application still queries the old name.
RENAME TABLE `orders` TO `purchases`;
