-- Nothing yet.
/* Still nothing. */
