-- Webhook delivery of alerts is at least once: each attempt is counted, and an
-- alert stays undelivered until its webhook answers 2xx, so a retried or later run
-- of the monitor sends it again.
ALTER TABLE alerts ADD COLUMN attempts INTEGER DEFAULT 0;
