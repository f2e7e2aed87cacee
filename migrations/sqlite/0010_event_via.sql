-- The API client an event came through (`/api/v1`), for the audit trail: "Rita Reyes (API: crm)".
ALTER TABLE events ADD COLUMN via TEXT;
