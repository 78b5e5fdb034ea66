-- Weather office (SPEC §10; docs/CONTRACT-weather.md). weather_history and weather_alerts come from 001.
-- One row of thresholds, edited from the Front (PUT /api/weather/thresholds) and read by EV_W every round.
CREATE TABLE IF NOT EXISTS weather_thresholds (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    min_c       numeric(5, 2) NOT NULL DEFAULT 0,
    max_c       numeric(5, 2),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (max_c IS NULL OR min_c < max_c)
);
INSERT INTO weather_thresholds (id) VALUES (true) ON CONFLICT (id) DO NOTHING;

CREATE INDEX IF NOT EXISTS weather_history_by_city ON weather_history (city, country, observed_at DESC);
CREATE INDEX IF NOT EXISTS weather_alerts_by_city ON weather_alerts (city, country, id DESC);
