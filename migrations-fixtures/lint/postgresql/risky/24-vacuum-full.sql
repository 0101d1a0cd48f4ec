-- VACUUM FULL rewrites orders under ACCESS EXCLUSIVE.
VACUUM FULL orders;
