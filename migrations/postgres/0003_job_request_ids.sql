-- The id of the API request that queued each job (X-Request-ID), so the worker's log lines for it carry that id.
ALTER TABLE jobs ADD COLUMN request_id text;
