-- 0010_infrastructure.sql - tables of the delivery machinery (ARCHITECTURE.md §3).
--
-- kafka_offsets: consumed offsets stored in the same transaction as the
-- effects (compare-and-set on next_offset), loaded on partition assignment.
-- outbox: events to publish, written in the transaction that caused them; a
-- relay publishes rows in id order with the idempotent producer and deletes
-- them after the delivery report. The statement-level trigger wakes the
-- relay (LISTEN blazz_outbox); notifications are delivered at commit, so the
-- relay never sees a row before it is visible, and a rolled-back insert
-- wakes nobody. Neither table holds tenant data visible to the CRM.

CREATE TABLE kafka_offsets (
  group_id text NOT NULL, topic text NOT NULL, partition integer NOT NULL,
  next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_id, topic, partition));

CREATE TABLE outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id uuid NOT NULL,
  topic text NOT NULL,               -- base topic name, without the deployment prefix
  msg_key bytea,
  payload bytea NOT NULL,
  headers jsonb NOT NULL DEFAULT '{}'::jsonb,  -- header name -> text value
  created_at timestamptz NOT NULL DEFAULT now());

COMMENT ON TABLE outbox IS 'Transactional outbox; the relay reads by id (primary key) and deletes after delivery.';

-- oldest pending row, for the outbox-age metric and retention checks
CREATE INDEX outbox_created_idx ON outbox (created_at);

CREATE FUNCTION blazz_outbox_notify() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('blazz_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION blazz_outbox_notify();
