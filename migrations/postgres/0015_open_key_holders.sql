-- The open handoffs holding open keys, in one round trip (`Store::create`, `write_decisions`).
-- `wanted` lists claims as `seam <GS> key`, separated by RS (control characters no contract value
-- holds). Each key is first locked for the transaction, in order, so that two transactions claiming
-- one key are decided one after the other; the query after the locks runs with a snapshot of its
-- own (a volatile function's statements each take one), so it sees a claim committed while it
-- waited.
CREATE FUNCTION open_key_holders(wanted TEXT) RETURNS TABLE (id BIGINT, seam TEXT, open_key TEXT)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    claim TEXT;
BEGIN
    FOR claim IN SELECT DISTINCT c FROM unnest(string_to_array(wanted, chr(30))) AS c ORDER BY c LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended(claim, 0));
    END LOOP;
    RETURN QUERY
        SELECT h.id, h.seam, h.open_key FROM handoffs h
        JOIN unnest(string_to_array(wanted, chr(30))) AS c
          ON h.seam = split_part(c, chr(29), 1) AND h.open_key = split_part(c, chr(29), 2)
        WHERE h.open_key IS NOT NULL;
END
$$;
