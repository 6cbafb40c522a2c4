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
    -- Each box's newest occupancy event: one backward index scan per box (events_occupancy).
    SELECT d.store_id, d.device_id,
           (o.payload->>'at')::timestamptz AS at,
           (o.payload->>'people')::int AS people,
           (o.payload->>'capacity')::int AS capacity
    FROM devices d
    CROSS JOIN LATERAL (
        SELECT payload FROM events e
        WHERE e.kind = 'occupancy' AND e.store_id = d.store_id AND e.device_id = d.device_id
        ORDER BY e.seq DESC LIMIT 1
    ) o
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

-- Hourly rollups the dashboard (`vitrine-ingest serve`) reads, kept exact by a trigger on every
-- event stored (a redelivered event inserts nothing, so it adds nothing): per store and hour,
-- crossings of every line (both directions), visitors and groups in at the entrances (the boxes'
-- occupancy windows), the most inside, queue waits (sum of waits of the served), dwell (sum over
-- ended visits), the funnel's stages and alerts raised. Counts published as null (below k_min)
-- add nothing.
CREATE TABLE IF NOT EXISTS store_hour (
    store_id        text             NOT NULL,
    hour            timestamptz      NOT NULL,
    crossings       bigint           NOT NULL DEFAULT 0,
    visitors_in     bigint           NOT NULL DEFAULT 0,
    groups_in       bigint           NOT NULL DEFAULT 0,
    occupancy_max   integer,
    queue_served    bigint           NOT NULL DEFAULT 0,
    queue_wait_s    double precision NOT NULL DEFAULT 0,
    dwell_visits    bigint           NOT NULL DEFAULT 0,
    dwell_s         double precision NOT NULL DEFAULT 0,
    funnel_passed   bigint           NOT NULL DEFAULT 0,
    funnel_entered  bigint           NOT NULL DEFAULT 0,
    funnel_engaged  bigint           NOT NULL DEFAULT 0,
    funnel_checkout bigint           NOT NULL DEFAULT 0,
    alerts          integer          NOT NULL DEFAULT 0,
    PRIMARY KEY (store_id, hour)
);
-- Each camera's latest forecast of its lines' crossings for an hour (newer forecasts replace).
CREATE TABLE IF NOT EXISTS forecast_hour (
    store_id  text             NOT NULL,
    source_id text             NOT NULL,
    hour      timestamptz      NOT NULL,
    crossings double precision NOT NULL,
    PRIMARY KEY (store_id, source_id, hour)
);
CREATE INDEX IF NOT EXISTS forecast_hour_store ON forecast_hour (store_id, hour);
-- Per box: the lowest and highest seq stored and how many (the dashboard's missing seqs:
-- max - min + 1 - stored - what gap records account for; `missing_seqs` lists them).
CREATE TABLE IF NOT EXISTS device_seqs (
    store_id  text   NOT NULL,
    device_id text   NOT NULL,
    min_seq   bigint NOT NULL,
    max_seq   bigint NOT NULL,
    stored    bigint NOT NULL,
    PRIMARY KEY (store_id, device_id)
);
CREATE INDEX IF NOT EXISTS events_alerts ON events (store_id, (payload->>'at')) WHERE kind = 'alert';
CREATE INDEX IF NOT EXISTS events_audits ON events (store_id, seq) WHERE kind = 'audit';

CREATE OR REPLACE FUNCTION rollup_event(e events) RETURNS void LANGUAGE plpgsql AS $fn$
DECLARE
    p jsonb := e.payload;
BEGIN
    INSERT INTO device_seqs AS d (store_id, device_id, min_seq, max_seq, stored)
    VALUES (e.store_id, e.device_id, e.seq, e.seq, 1)
    ON CONFLICT (store_id, device_id) DO UPDATE SET
        min_seq = least(d.min_seq, EXCLUDED.min_seq),
        max_seq = greatest(d.max_seq, EXCLUDED.max_seq),
        stored = d.stored + 1;
    IF e.kind = 'window' AND p->>'kind' = 'camera' THEN
        INSERT INTO store_hour AS s (store_id, hour, crossings, queue_served, queue_wait_s,
            dwell_visits, dwell_s, funnel_passed, funnel_entered, funnel_engaged, funnel_checkout)
        SELECT e.store_id, date_trunc('hour', e.window_start),
            coalesce((SELECT sum(coalesce((l->>'in')::bigint, 0) + coalesce((l->>'out')::bigint, 0))
                      FROM jsonb_array_elements(coalesce(p->'lines', '[]')) l), 0),
            coalesce((SELECT sum((q->'wait_seconds'->>'count')::bigint)
                      FROM jsonb_array_elements(coalesce(p->'queues', '[]')) q), 0),
            coalesce((SELECT sum((q->'wait_seconds'->>'count')::float8 * (q->'wait_seconds'->>'mean')::float8)
                      FROM jsonb_array_elements(coalesce(p->'queues', '[]')) q), 0),
            coalesce((SELECT sum((z->'dwell_seconds'->>'count')::bigint)
                      FROM jsonb_array_elements(coalesce(p->'zones', '[]')) z), 0),
            coalesce((SELECT sum((z->'dwell_seconds'->>'count')::float8 * (z->'dwell_seconds'->>'mean')::float8)
                      FROM jsonb_array_elements(coalesce(p->'zones', '[]')) z), 0),
            coalesce((p->'funnel'->>'passed')::bigint, 0), coalesce((p->'funnel'->>'entered')::bigint, 0),
            coalesce((p->'funnel'->>'engaged')::bigint, 0), coalesce((p->'funnel'->>'checkout')::bigint, 0)
        ON CONFLICT (store_id, hour) DO UPDATE SET
            crossings = s.crossings + EXCLUDED.crossings,
            queue_served = s.queue_served + EXCLUDED.queue_served,
            queue_wait_s = s.queue_wait_s + EXCLUDED.queue_wait_s,
            dwell_visits = s.dwell_visits + EXCLUDED.dwell_visits,
            dwell_s = s.dwell_s + EXCLUDED.dwell_s,
            funnel_passed = s.funnel_passed + EXCLUDED.funnel_passed,
            funnel_entered = s.funnel_entered + EXCLUDED.funnel_entered,
            funnel_engaged = s.funnel_engaged + EXCLUDED.funnel_engaged,
            funnel_checkout = s.funnel_checkout + EXCLUDED.funnel_checkout;
    ELSIF e.kind = 'occupancy' AND e.window_start IS NOT NULL THEN
        INSERT INTO store_hour AS s (store_id, hour, visitors_in, groups_in, occupancy_max)
        VALUES (e.store_id, date_trunc('hour', e.window_start), coalesce((p->>'in')::bigint, 0),
                coalesce((p->>'groups_in')::bigint, 0), (p->>'max')::int)
        ON CONFLICT (store_id, hour) DO UPDATE SET
            visitors_in = s.visitors_in + EXCLUDED.visitors_in,
            groups_in = s.groups_in + EXCLUDED.groups_in,
            occupancy_max = greatest(s.occupancy_max, EXCLUDED.occupancy_max);
    ELSIF e.kind = 'alert' AND p->>'state' = 'raised' THEN
        INSERT INTO store_hour AS s (store_id, hour, alerts)
        VALUES (e.store_id, date_trunc('hour', (p->>'at')::timestamptz), 1)
        ON CONFLICT (store_id, hour) DO UPDATE SET alerts = s.alerts + 1;
    ELSIF e.kind = 'forecast' THEN
        INSERT INTO forecast_hour AS f (store_id, source_id, hour, crossings)
        SELECT e.store_id, e.source_id, (p->>'from')::timestamptz + i * interval '1 hour',
               sum(coalesce((l->'crossings'->'next_hours'->>i)::float8, 0))
        FROM jsonb_array_elements(coalesce(p->'lines', '[]')) l,
             generate_series(0, jsonb_array_length(coalesce(p->'lines'->0->'crossings'->'next_hours', '[]')) - 1) i
        GROUP BY i
        ON CONFLICT (store_id, source_id, hour) DO UPDATE SET crossings = EXCLUDED.crossings;
    END IF;
END
$fn$;

CREATE OR REPLACE FUNCTION events_rollup() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    PERFORM rollup_event(NEW);
    RETURN NULL;
END
$fn$;
DROP TRIGGER IF EXISTS events_rollup ON events;
CREATE TRIGGER events_rollup AFTER INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_rollup();
-- A database made before the rollups: filled once from the events already stored.
DO $fn$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM store_hour) AND NOT EXISTS (SELECT 1 FROM forecast_hour)
       AND NOT EXISTS (SELECT 1 FROM device_seqs) THEN
        PERFORM rollup_event(e) FROM events e;
    END IF;
END
$fn$;
