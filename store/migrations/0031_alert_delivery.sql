-- Webhook delivery of alerts is at least once: each attempt is counted here, and
-- an alert stays undelivered until its webhook answers 2xx, so that a retried or
-- later run of the monitor sends it again. (A table of its own rather than a new
-- column of alerts: DuckDB cannot replay an ALTER TABLE of a table with a
-- sequence default from the write-ahead log.)
CREATE TABLE alert_deliveries (
    alert_id BIGINT PRIMARY KEY,
    attempts INTEGER NOT NULL
);
