-- CLUSTER rewrites users under ACCESS EXCLUSIVE.
CLUSTER users USING users_pkey;
