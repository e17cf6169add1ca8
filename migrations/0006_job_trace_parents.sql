-- The span of the API request that queued each job (W3C traceparent, when tracing is on), so the worker's span for
-- the job joins that request's trace.
ALTER TABLE jobs ADD COLUMN trace_parent TEXT;
