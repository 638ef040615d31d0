-- Your application's table: what the example's handler writes, in the same
-- transaction as the inbox's record that it succeeded. Apply it with your own
-- migrations, beside the inbox's (sir-webhooks migrate --print).
CREATE TABLE IF NOT EXISTS credits (
  event_id text PRIMARY KEY,
  action_id text NOT NULL,
  tokens integer NOT NULL CHECK (tokens >= 0),
  credited_at timestamptz NOT NULL DEFAULT now()
);
