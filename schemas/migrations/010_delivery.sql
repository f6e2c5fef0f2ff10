-- 010_delivery.sql - delivery of ranking-shift alerts to HTTP destinations
-- (Alertmanager, Slack, Teams, CloudEvents, JSON webhooks) by tradeflow-relay:
-- one durable cursor per destination over the outbox (tradeflow.alerts), and
-- the alerts a destination refused (4xx), parked instead of retried.
-- docs/alerts.md, "Delivery to Alertmanager and webhooks".

-- One row per configured destination (deliver.NAME.* in the relay's
-- configuration), created at its first start. Every alert with an id up to
-- last_alert_id has been handled for that destination: delivered (2xx),
-- parked, suppressed, or outside its filter. Renaming a destination starts a
-- new cursor; deleting the row makes the next start begin again (deliver.NAME.start).
CREATE TABLE tradeflow.delivery_cursors (
    destination   text PRIMARY KEY,
    kind          text NOT NULL,
    last_alert_id bigint NOT NULL DEFAULT 0,
    delivered     bigint NOT NULL DEFAULT 0, -- 2xx responses counted at the cursor's moves
    parked        bigint NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Alerts a destination refused with a status that is not retried (4xx other
-- than 408 and 429). The cursor moved past them in the same transaction, so
-- they do not block the alerts behind them. To send them again after fixing
-- the cause, move the destination's cursor back (receivers drop repeats by
-- the idempotency key), or replay them by hand.
CREATE TABLE tradeflow.delivery_parked (
    destination text NOT NULL REFERENCES tradeflow.delivery_cursors ON DELETE CASCADE,
    alert_id    bigint NOT NULL REFERENCES tradeflow.alerts,
    http_status integer NOT NULL,
    error       text NOT NULL,           -- "HTTP 400: " and the start of the response body
    parked_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (destination, alert_id)
);

-- Where each destination stands: its cursor, the alerts after it (before its
-- filter, suppressed ones left out), and what it delivered and parked.
CREATE VIEW reporting.delivery_status AS
SELECT c.destination, c.kind, c.last_alert_id,
       (SELECT count(*) FROM tradeflow.alerts a
         WHERE a.alert_id > c.last_alert_id AND NOT a.suppressed) AS backlog,
       c.delivered, c.parked, c.updated_at
  FROM tradeflow.delivery_cursors c;
COMMENT ON VIEW reporting.delivery_status IS
  'Per alert destination of tradeflow-relay: cursor, backlog, delivered, parked. See docs/alerts.md.';

CREATE VIEW reporting.delivery_parked AS
SELECT p.destination, p.alert_id, p.http_status, p.error, p.parked_at,
       a.kind, a.dataset, a.reporter, a.flow, a.basis, a.level, a.period, a.partner,
       a.old_rank, a.new_rank
  FROM tradeflow.delivery_parked p JOIN tradeflow.alerts a USING (alert_id);
COMMENT ON VIEW reporting.delivery_parked IS
  'Alerts a destination refused (4xx), not retried. See docs/alerts.md.';

-- The relay runs as tradeflow_writer (005_roles.sql); the default privileges
-- of 005 cover these objects when the same owner applies the migrations,
-- the explicit grants also when another one does.
GRANT SELECT, INSERT, UPDATE, DELETE ON tradeflow.delivery_cursors, tradeflow.delivery_parked
    TO tradeflow_writer;
GRANT SELECT ON reporting.delivery_status, reporting.delivery_parked
    TO tradeflow_writer, tradeflow_reader;
