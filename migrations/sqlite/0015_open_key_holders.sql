-- Nothing: PostgreSQL's `open_key_holders` locks claims that SQLite, one writer at a time, need not.
SELECT 1;
