-- Core schema (SPEC §8). Money and energy are exact decimals.
CREATE TABLE IF NOT EXISTS charging_points (
    cp_id          text PRIMARY KEY CHECK (cp_id ~ '^[A-Za-z0-9_-]{1,32}$'),
    address        text NOT NULL,
    city           text NOT NULL,
    country        text NOT NULL DEFAULT 'ES',
    price_eur_kwh  numeric(8, 4) NOT NULL CHECK (price_eur_kwh >= 0),
    power_kw       numeric(8, 2) NOT NULL CHECK (power_kw > 0),
    zone           text NOT NULL DEFAULT 'default',
    out_of_service text[] NOT NULL DEFAULT '{}',
    engine_ok      boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS drivers (
    driver_id     text PRIMARY KEY CHECK (driver_id ~ '^[A-Za-z0-9_.@-]{1,64}$'),
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS supplies (
    supply_id      text PRIMARY KEY,
    request_id     text,
    cp_id          text NOT NULL,
    driver_id      text NOT NULL,
    phase          text NOT NULL CHECK (phase IN ('AUTHORIZED', 'CHARGING', 'FINISHED')),
    price_eur_kwh  numeric(8, 4) NOT NULL,
    authorized_at  timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz,
    started_at     timestamptz,
    ended_at       timestamptz,
    energy_kwh     numeric(12, 3) NOT NULL DEFAULT 0,
    amount_eur     numeric(12, 2) NOT NULL DEFAULT 0,
    power_kw       numeric(8, 2) NOT NULL DEFAULT 0,
    end_reason     text
);
CREATE UNIQUE INDEX IF NOT EXISTS supplies_one_open_per_cp ON supplies (cp_id) WHERE phase <> 'FINISHED';
CREATE INDEX IF NOT EXISTS supplies_by_driver ON supplies (driver_id, authorized_at DESC);

CREATE TABLE IF NOT EXISTS tickets (
    ticket_id      text PRIMARY KEY,
    supply_id      text NOT NULL UNIQUE REFERENCES supplies (supply_id),
    cp_id          text NOT NULL,
    driver_id      text NOT NULL,
    started_at     timestamptz,
    ended_at       timestamptz NOT NULL,
    duration_s     integer NOT NULL,
    energy_kwh     numeric(12, 3) NOT NULL,
    price_eur_kwh  numeric(8, 4) NOT NULL,
    amount_eur     numeric(12, 2) NOT NULL,
    reason         text NOT NULL,
    issued_at      timestamptz NOT NULL DEFAULT now(),
    acked_at       timestamptz
);
CREATE INDEX IF NOT EXISTS tickets_unacked ON tickets (driver_id) WHERE acked_at IS NULL;

CREATE TABLE IF NOT EXISTS channel_leases (
    client_id   text PRIMARY KEY,
    kind        text NOT NULL,
    zone        text NOT NULL,
    channel     integer NOT NULL,
    partition   integer NOT NULL,
    expires_at  timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS cp_credentials (
    cp_id        text PRIMARY KEY REFERENCES charging_points (cp_id) ON DELETE CASCADE,
    secret_hash  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);

CREATE TABLE IF NOT EXISTS cp_keys (
    cp_id        text NOT NULL,
    key_version  integer NOT NULL,
    key_material bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    PRIMARY KEY (cp_id, key_version)
);

CREATE TABLE IF NOT EXISTS weather_history (
    id           bigserial PRIMARY KEY,
    city         text NOT NULL,
    country      text NOT NULL DEFAULT 'ES',
    temperature  numeric(5, 2) NOT NULL,
    observed_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS weather_alerts (
    id           bigserial PRIMARY KEY,
    city         text NOT NULL,
    country      text NOT NULL DEFAULT 'ES',
    kind         text NOT NULL CHECK (kind IN ('ALERT', 'CLEAR')),
    temperature  numeric(5, 2),
    created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS audit_log (
    id           bigserial PRIMARY KEY,
    ts           timestamptz NOT NULL DEFAULT now(),
    component    text NOT NULL,
    category     text NOT NULL CHECK (category IN ('AUTH', 'CHARGE', 'INCIDENT', 'STATUS', 'ERROR', 'SECURITY', 'SYSTEM')),
    action       text NOT NULL,
    actor        text,
    source_ip    text,
    success      boolean NOT NULL DEFAULT true,
    description  text
);
CREATE INDEX IF NOT EXISTS audit_log_ts ON audit_log (ts DESC);

CREATE TABLE IF NOT EXISTS app_messages (
    id           bigserial PRIMARY KEY,
    ts           timestamptz NOT NULL DEFAULT now(),
    component    text NOT NULL,
    level        text NOT NULL,
    text         text NOT NULL
);
