-- Request keys older than `[retention] request_keys` are deleted (`Store::prune`), found by age.
CREATE INDEX processed_requests_at ON processed_requests (at_ms);
