-- Vitrine's reference ingest: the tables it writes (applied at start, idempotent).
-- Every event of a box (window, alert, forecast, gap record, config result, accuracy audit) is one row, keyed by its
-- idempotency key: a redelivered event is not a second row.
CREATE TABLE IF NOT EXISTS events (
    idempotency_key text PRIMARY KEY,
    store_id        text        NOT NULL,
    device_id       text        NOT NULL,
    seq             bigint      NOT NULL,
    kind            text        NOT NULL,
    source_id       text,
    window_start    timestamptz,
    window_end      timestamptz,
    payload         jsonb       NOT NULL,
    received_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- The kinds (kept as one named constraint, replaced at every start, so a database made by an
-- older ingest learns new kinds).
ALTER TABLE events DROP CONSTRAINT IF EXISTS events_kind_check;
ALTER TABLE events ADD CONSTRAINT events_kind_check
    CHECK (kind IN ('window', 'alert', 'forecast', 'gap', 'config_result', 'audit', 'occupancy')) NOT VALID;
-- One seq per device: a second event claiming a seq already stored is refused as well.
CREATE UNIQUE INDEX IF NOT EXISTS events_device_seq ON events (store_id, device_id, seq);
CREATE INDEX IF NOT EXISTS events_windows ON events (store_id, window_start) WHERE kind = 'window';

-- What gap records say the box dropped on purpose (full outbox, corrupt segment).
CREATE TABLE IF NOT EXISTS gap_ranges (
    store_id  text   NOT NULL,
    device_id text   NOT NULL,
    from_seq  bigint NOT NULL,
    to_seq    bigint NOT NULL,
    gap_seq   bigint NOT NULL,
    PRIMARY KEY (store_id, device_id, gap_seq)
);

-- The last status of each box: "online" on connect, "offline" from a clean shutdown or from
-- the last will the broker publishes when the box vanished.
CREATE TABLE IF NOT EXISTS devices (
    store_id   text        NOT NULL,
    device_id  text        NOT NULL,
    state      text        NOT NULL,
    reason     text        NOT NULL,
    version    text,
    changed_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (store_id, device_id)
);

-- Messages the ingest could not accept (malformed, wrong schema, topic and payload
-- disagreeing): kept with the reason, never silently dropped. Bounded excerpt only.
CREATE TABLE IF NOT EXISTS rejected (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    reason      text        NOT NULL,
    bytes       integer     NOT NULL,
    excerpt     text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Sequence numbers that never arrived and that no gap record covers, between the first and
-- the last seq stored for each device.
CREATE OR REPLACE VIEW missing_seqs AS
WITH ordered AS (
    SELECT store_id, device_id, seq,
           lag(seq) OVER (PARTITION BY store_id, device_id ORDER BY seq) AS prev
    FROM events
), holes AS (
    SELECT store_id, device_id, generate_series(prev + 1, seq - 1) AS seq
    FROM ordered WHERE prev IS NOT NULL AND seq > prev + 1
)
SELECT h.store_id, h.device_id, h.seq
FROM holes h
WHERE NOT EXISTS (
    SELECT 1 FROM gap_ranges g
    WHERE g.store_id = h.store_id AND g.device_id = h.device_id
      AND h.seq BETWEEN g.from_seq AND g.to_seq
);

-- The store's occupancy now: each box's last count (its newest occupancy event), summed over
-- the boxes of the store (each counts its own entrances). A box's count below k_min is null:
-- the sum then leaves it out and says so.
CREATE INDEX IF NOT EXISTS events_occupancy ON events (store_id, device_id, seq) WHERE kind = 'occupancy';
CREATE OR REPLACE VIEW store_occupancy AS
WITH last AS (
    SELECT DISTINCT ON (store_id, device_id)
           store_id, device_id,
           (payload->>'at')::timestamptz AS at,
           (payload->>'people')::int AS people,
           (payload->>'capacity')::int AS capacity
    FROM events
    WHERE kind = 'occupancy'
    ORDER BY store_id, device_id, seq DESC
)
SELECT store_id,
       coalesce(sum(people), 0) AS people,
       count(*) AS boxes,
       count(*) FILTER (WHERE people IS NULL) AS boxes_suppressed,
       max(capacity) AS capacity,
       min(at) AS oldest_at
FROM last
GROUP BY store_id;

-- Sales from the stores' points of sale (MQTT {prefix}/{store}/pos/transaction, or
-- `vitrine-ingest import-pos` from a POS export): once per (store, transaction id), however
-- often and whichever way they come. Only what conversion needs; no customer or card.
CREATE TABLE IF NOT EXISTS transactions (
    store_id       text        NOT NULL,
    transaction_id text        NOT NULL,
    at             timestamptz NOT NULL,
    total          numeric,
    currency       text,
    items          integer,
    register       text,
    source         text        NOT NULL CHECK (source IN ('mqtt', 'csv')),
    received_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (store_id, transaction_id)
);
CREATE INDEX IF NOT EXISTS transactions_at ON transactions (store_id, at);
CREATE INDEX IF NOT EXISTS events_occupancy_windows ON events (store_id, window_start)
    WHERE kind = 'occupancy' AND window_start IS NOT NULL;

-- Conversion per store and hour (UTC hours; shift with AT TIME ZONE for local ones):
-- transactions ÷ groups that came in through the store's entrances (the boxes' occupancy
-- windows, summed over boxes). An hour is trustworthy when `coverage` (the share of the hour
-- the boxes' occupancy windows cover, averaged over the store's boxes) is near 1 and no window
-- of it had its groups suppressed (`suppressed_windows`: fewer than k_min groups in a window
-- publish null, which the sum cannot count).
CREATE OR REPLACE VIEW conversion AS
WITH visits AS (
    SELECT store_id,
           date_trunc('hour', window_start) AS hour,
           sum((payload->>'groups_in')::bigint)::bigint AS groups_in,
           count(*) FILTER (WHERE payload->>'groups_in' IS NULL) AS suppressed_windows,
           sum((payload->'window'->>'seconds')::bigint) AS seconds,
           count(DISTINCT device_id) AS boxes
    FROM events
    WHERE kind = 'occupancy' AND window_start IS NOT NULL
    GROUP BY 1, 2
), sales AS (
    SELECT store_id, date_trunc('hour', at) AS hour, count(*) AS transactions
    FROM transactions
    GROUP BY 1, 2
)
SELECT coalesce(v.store_id, s.store_id) AS store_id,
       coalesce(v.hour, s.hour) AS hour,
       coalesce(s.transactions, 0) AS transactions,
       v.groups_in,
       round(coalesce(s.transactions, 0)::numeric / nullif(v.groups_in, 0), 4) AS conversion,
       round(coalesce(v.seconds, 0)::numeric / (3600 * greatest(v.boxes, 1)), 4) AS coverage,
       coalesce(v.suppressed_windows, 0) AS suppressed_windows
FROM visits v
FULL JOIN sales s ON v.store_id = s.store_id AND v.hour = s.hour;
