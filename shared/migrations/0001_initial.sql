-- Keys, routes, the request log and the shared rate-limit counters.
-- gen_random_uuid() is built in from PostgreSQL 13.

CREATE TABLE routes (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text NOT NULL CONSTRAINT routes_name_key UNIQUE,
    path_prefix  text NOT NULL CONSTRAINT routes_path_prefix_key UNIQUE,
    kind         text NOT NULL CHECK (kind IN ('proxy', 'aggregate')),
    upstream_url text,
    parts        jsonb,
    strip_prefix boolean NOT NULL DEFAULT false,
    timeout_ms   integer NOT NULL CHECK (timeout_ms > 0),
    retries      integer NOT NULL CHECK (retries >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'proxy') = (upstream_url IS NOT NULL)),
    CHECK ((kind = 'aggregate') = (parts IS NOT NULL))
);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name          text NOT NULL,
    key_hash      text NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,
    prefix        text NOT NULL,
    rate_limit    integer NOT NULL CHECK (rate_limit > 0),
    rate_window_s integer NOT NULL CHECK (rate_window_s > 0),
    routes        text[],
    expires_at    timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX api_keys_created_idx ON api_keys (created_at, id);
CREATE INDEX routes_created_idx ON routes (created_at, id);

-- One row whose version every change to keys or routes bumps; each gateway process polls it
-- from its sync loop and reloads its snapshot when it moves.
CREATE TABLE config_state (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    version   bigint NOT NULL
);
INSERT INTO config_state VALUES (true, 1);

CREATE FUNCTION bump_config_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE config_state SET version = version + 1;
    PERFORM pg_notify('gateway_config', TG_TABLE_NAME);
    RETURN NULL;
END $$;

CREATE TRIGGER routes_changed AFTER INSERT OR UPDATE OR DELETE ON routes
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();
CREATE TRIGGER api_keys_changed AFTER INSERT OR UPDATE OR DELETE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION bump_config_version();

CREATE TABLE request_log (
    id           bigserial PRIMARY KEY,
    request_id   text NOT NULL,
    key_id       uuid,
    route        text,
    method       text NOT NULL,
    path         text NOT NULL,
    status       integer NOT NULL,
    duration_ms  double precision NOT NULL,
    upstream_ms  double precision,
    bytes_in     bigint NOT NULL,
    bytes_out    bigint NOT NULL,
    at           timestamptz NOT NULL,
    implementation text NOT NULL
);
CREATE INDEX request_log_key_idx ON request_log (key_id, route, status);
CREATE INDEX request_log_request_id_idx ON request_log (request_id);

-- Fixed-window counters shared by every process: each adds its own admissions.
CREATE TABLE rate_counters (
    key_id       uuid NOT NULL,
    window_start bigint NOT NULL,
    window_s     integer NOT NULL,
    count        integer NOT NULL,
    PRIMARY KEY (key_id, window_start, window_s)
);
