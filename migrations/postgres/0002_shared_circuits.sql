-- Circuit breakers shared by the replicas: a row while a provider's circuit is open. Every replica stops calling
-- the provider until open_until; then one of them takes the probe (probe_until: until when it holds it) and, if the
-- provider answers, deletes the row for all.
CREATE TABLE provider_circuits (
    provider     text PRIMARY KEY,
    open_until   double precision NOT NULL,
    cool_down    double precision NOT NULL,
    probe_until  double precision
);
