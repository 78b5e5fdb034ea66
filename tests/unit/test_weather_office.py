"""EV_W's core without I/O: the edge trigger table, locations, a poll round with fakes, the providers."""
from __future__ import annotations

import io
import json

import pytest
import requests

from EV_Weather.console import WeatherConsole
from EV_Weather.office import (ALERT, CLEAR, UNREACHABLE, CentralError, Location, LocationBook, ProviderError,
                               Thresholds, WeatherOffice, edge)
from EV_Weather.providers import OpenWeatherProvider, ScenarioProvider, interpolate, openweather_key

ZERO = Thresholds(0.0, None)
BAND = Thresholds(0.0, 35.0)


# ---------------------------------------------------------------- edge trigger (pure)
@pytest.mark.parametrize("alerted, temperature, thresholds, expected", [
    (False, 5.0, ZERO, None),          # in range, nothing to say
    (False, 0.0, ZERO, None),          # the minimum itself is in range
    (False, -0.1, ZERO, ALERT),        # leaves the range: one ALERT
    (True, -3.0, ZERO, None),          # still out: no repeated ALERT
    (True, 0.0, ZERO, CLEAR),          # back: one CLEAR
    (False, 36.0, BAND, ALERT),        # above the maximum
    (True, 35.0, BAND, CLEAR),         # the maximum itself is in range
    (False, 99.0, ZERO, None),         # no maximum
    (True, None, ZERO, None),          # no reading this round: nothing changes
    (False, None, ZERO, None),
])
def test_edge_table(alerted, temperature, thresholds, expected):
    assert edge(alerted, temperature, thresholds) == expected


@pytest.mark.parametrize("text, city, country", [("Bilbao", "Bilbao", "ES"), ("  San  Sebastián , es", "San Sebastián", "ES"),
                                                 ("Paris,FR", "Paris", "FR")])
def test_location_parse(text, city, country):
    loc = Location.parse(text)
    assert (loc.city, loc.country) == (city, country)


@pytest.mark.parametrize("text", ["", ",ES", "Bilbao,ESP", "Bilbao,1X", "x" * 101])
def test_location_parse_refuses(text):
    with pytest.raises(ValueError):
        Location.parse(text)


def test_locations_are_matched_case_and_space_insensitively():
    assert Location("málaga ", "es").key == Location("Málaga", "ES").key


def test_location_book_sync_add_remove():
    book = LocationBook()
    assert book.sync([Location("Bilbao"), Location("Madrid")]) == ([Location("Bilbao"), Location("Madrid")], [])
    assert book.add(Location("Lyon", "FR")) and not book.add(Location("bilbao"))
    assert book.remove(Location("Madrid"))  # a CP's city, removed by the operator
    appeared, gone = book.sync([Location("Bilbao"), Location("Madrid"), Location("Sevilla")])
    assert appeared == [Location("Sevilla")] and gone == []  # Madrid stays removed until added again
    assert [l.label for l in book.current()] == ["Bilbao,ES", "Lyon,FR", "Sevilla,ES"]
    assert book.add(Location("Madrid")) and book.source(Location("Madrid")) == "cp"
    assert book.sync([Location("Madrid")])[1] == [Location("Bilbao"), Location("Sevilla")]
    assert not book.remove(Location("Toledo"))


# ---------------------------------------------------------------- a round with fakes
class FakeProvider:
    name = "fake"

    def __init__(self):
        self.values: dict[str, object] = {}

    def temperature(self, location: Location) -> float:
        value = self.values.get(location.city, 10.0)
        if isinstance(value, Exception):
            raise value
        return value


class FakeCentral:
    def __init__(self, cities=("Bilbao", "Madrid")):
        self.cities = [Location(c) for c in cities]
        self.limits = Thresholds()
        self.alerts: list[tuple[str, str]] = []
        self.observed: list[list[dict]] = []
        self.messages: list[tuple[str, str]] = []
        self.down = False
        self.alerted: list[Location] = []

    def _check(self):
        if self.down:
            raise CentralError("ConnectionError")

    def locations(self):
        self._check()
        return list(self.cities)

    def alerted_places(self):
        self._check()
        return list(self.alerted)

    def thresholds(self):
        self._check()
        return self.limits

    def observations(self, items):
        self._check()
        self.observed.append(items)

    def alert(self, location, kind, temperature):
        self._check()
        self.alerts.append((kind, location.label))
        return [f"CP-{location.city}"]

    def message(self, level, text):
        self._check()
        self.messages.append((level, text))


@pytest.fixture
def office():
    lines: list[str] = []
    o = WeatherOffice(FakeProvider(), FakeCentral(), out=lines.append, wall=lambda: 1000.0, workers=2)
    o.lines = lines
    assert o.sync()
    yield o
    o.close()


def test_round_posts_temperatures_and_alerts_once_per_crossing(office):
    office.provider.values["Bilbao"] = -1.0
    office.poll_round()
    office.poll_round()
    office.provider.values["Bilbao"] = 2.0
    office.poll_round()
    office.poll_round()
    assert office.central.alerts == [(ALERT, "Bilbao,ES"), (CLEAR, "Bilbao,ES")]
    assert office.central.observed[0] == [{"city": "Bilbao", "country": "ES", "temperature": -1.0},
                                          {"city": "Madrid", "country": "ES", "temperature": 10.0}]


def test_a_failing_city_keeps_its_last_value_and_the_others_go_on(office):
    office.poll_round()
    office.provider.values["Bilbao"] = ProviderError("OpenWeather HTTP 404: city not found", 404)
    office.provider.values["Madrid"] = 12.0
    result = office.poll_round()
    office.poll_round()
    assert result.temperatures == {"Madrid,ES": 12.0} and "Bilbao,ES" in result.failed
    bilbao = next(r for r in office.status() if r["city"] == "Bilbao")
    assert bilbao["temperature"] == 10.0 and "404" in bilbao["error"]
    errors = [t for level, t in office.central.messages if level == "error"]
    assert len(errors) == 1 and errors[0].startswith(UNREACHABLE) and "Bilbao,ES" in errors[0]
    office.provider.values["Bilbao"] = 8.0
    office.poll_round()
    assert office.central.messages[-1] == ("info", "Clima disponible de nuevo: Bilbao,ES")


def test_an_unexpected_provider_exception_hits_one_city_only(office):
    office.provider.values["Bilbao"] = RuntimeError("bug")
    assert office.poll_round().temperatures == {"Madrid,ES": 10.0}


def test_all_cities_down_is_one_short_message(office):
    office.provider.values.update(Bilbao=ProviderError("sin conexión"), Madrid=ProviderError("sin conexión"))
    office.poll_round()
    assert office.central.messages == [("error", f"{UNREACHABLE} (todas las ciudades: sin conexión)")]


def test_an_alert_central_did_not_take_is_sent_again(office):
    office.provider.values["Bilbao"] = -4.0
    office.central.down = True
    office.poll_round()
    assert office.central.alerts == [] and any("Imposible conectar con la CENTRAL" in l for l in office.lines)
    office.central.down = False
    office.poll_round()
    office.poll_round()
    assert office.central.alerts == [(ALERT, "Bilbao,ES")]


def test_messages_wait_while_central_is_away(office):
    office.central.down = True
    office.provider.values["Madrid"] = ProviderError("timeout")
    office.poll_round()
    office.central.down = False
    office.poll_round()
    assert [level for level, _ in office.central.messages] == ["error"]


def test_thresholds_are_read_every_round(office):
    office.provider.values["Madrid"] = 5.0
    office.poll_round()
    office.central.limits = Thresholds(6.0, None)
    office.poll_round()
    assert office.central.alerts == [(ALERT, "Madrid,ES")]
    assert any("Umbrales: [6 °C, —]" in l for l in office.lines)


def test_a_place_no_longer_watched_is_cleared(office):
    office.provider.values["Bilbao"] = -2.0
    office.poll_round()
    office.central.cities = [Location("Madrid")]
    office.sync()
    office.poll_round()
    assert office.central.alerts == [(ALERT, "Bilbao,ES"), (CLEAR, "Bilbao,ES")]


def test_alerts_known_to_central_carry_over_a_restart():
    central = FakeCentral()
    central.alerted = [Location("Bilbao")]
    o = WeatherOffice(FakeProvider(), central, out=lambda _: None, workers=1)
    o.sync()
    o.poll_round()  # Bilbao is 10 °C now: CLEAR, though this EV_W never sent the ALERT
    o.close()
    assert central.alerts == [(CLEAR, "Bilbao,ES")]


def test_console_commands(office):
    out = io.StringIO()
    console = WeatherConsole(office, io.StringIO("add Lyon,FR\nlist\nremove Madrid\nbogus\nquit\n"), out)
    assert console.run() is True
    text = out.getvalue()
    assert "Ubicación añadida: Lyon,FR" in text and "Ubicación retirada: Madrid,ES" in text
    assert "Lyon" in text and "comandos:" in text
    assert [l.label for l in office.book.current()] == ["Bilbao,ES", "Lyon,FR"]


def test_console_eof_keeps_running(office):
    assert WeatherConsole(office, io.StringIO("list\n"), io.StringIO()).run() is False


# ---------------------------------------------------------------- scenario provider
SCENARIO = {"period_s": 100, "cities": {"Bilbao,ES": [[0, 4], [10, -4], [50, None], [60, 2]]}}


@pytest.mark.parametrize("t, expected", [(0, 4.0), (5, 0.0), (10, -4.0), (30, -4.0), (49, -4.0), (55, None),
                                         (60, 2.0), (80, 3.0), (100, 4.0), (105, 0.0)])
def test_scenario_interpolates_and_loops(t, expected):
    now = [0.0]
    provider = ScenarioProvider(SCENARIO, clock=lambda: now[0])
    now[0] = t
    if expected is None:
        with pytest.raises(ProviderError):
            provider.temperature(Location("bilbao"))
    else:
        assert provider.temperature(Location("Bilbao")) == pytest.approx(expected, abs=0.01)


def test_scenario_other_cities_are_steady_and_plausible():
    provider = ScenarioProvider(SCENARIO, clock=lambda: 0.0)
    values = {provider.temperature(Location(c)) for c in ("Madrid", "Sevilla", "Málaga")}
    assert all(5 < v < 25 for v in values) and len(values) == 3
    assert provider.temperature(Location("Madrid")) == provider.temperature(Location("Madrid"))


@pytest.mark.parametrize("bad", [{"cities": {"X": []}}, {"cities": {"X": [[5, 1], [2, 1]]}},
                                 {"cities": {"X": [[0, "cold"]]}}, {"period_s": 10, "cities": {"X": [[0, 1], [20, 2]]}},
                                 {"cities": {"X,ESP": [[0, 1]]}}])
def test_scenario_refuses_bad_files(bad):
    with pytest.raises(ValueError):
        ScenarioProvider(bad)


def test_demo_scenario_freezes_bilbao_and_recovers():
    path = __import__("pathlib").Path(__file__).resolve().parents[2] / "demo" / "weather" / "scenario.json"
    now = [0.0]
    provider = ScenarioProvider.from_file(path, clock=lambda: now[0])
    temps = []
    for t in range(0, int(provider.period_s), 4):
        now[0] = t
        temps.append(provider.temperature(Location("Bilbao")))
    frozen = [t < 0 for t in temps]
    assert frozen[0] is False and frozen[-1] is False and any(frozen)
    assert sum(1 for a, b in zip(frozen, frozen[1:]) if a != b) == 2  # one freeze, one thaw per loop


def test_interpolate_before_the_first_point_wraps():
    assert interpolate([(10.0, 0.0), (20.0, 10.0)], 5.0, 30.0) == 2.5  # from (20, 10) at -10 s to (10, 0)


# ---------------------------------------------------------------- OpenWeather provider (fake session)
class FakeResponse:
    def __init__(self, status: int, body):
        self.status_code, self._body = status, body

    def json(self):
        if isinstance(self._body, str):
            raise ValueError("not json")
        return self._body


class FakeSession:
    def __init__(self, answer):
        self.answer, self.calls = answer, []

    def get(self, url, params, timeout):
        self.calls.append((url, params, timeout))
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def _provider(answer):
    session = FakeSession(answer)
    return OpenWeatherProvider("SECRET123", "http://stub/data/2.5/weather", session_factory=lambda: session), session


def test_openweather_asks_by_city_and_country_in_metric():
    provider, session = _provider(FakeResponse(200, {"main": {"temp": -1.5}, "cod": 200}))
    assert provider.temperature(Location("Bilbao")) == -1.5
    assert session.calls[0][1] == {"q": "Bilbao,ES", "units": "metric", "appid": "SECRET123"}


@pytest.mark.parametrize("answer, text", [
    (FakeResponse(401, {"cod": 401, "message": "Invalid API key. Please see https://openweathermap.org/faq#error401"}),
     "HTTP 401: Invalid API key"),
    (FakeResponse(404, {"cod": "404", "message": "city not found"}), "HTTP 404: city not found"),
    (FakeResponse(500, "<html>oops</html>"), "HTTP 500: respuesta no válida"),
    (FakeResponse(200, {"cod": 200}), "sin main.temp"),
    (FakeResponse(200, {"main": {"temp": "NaN"}}), "no válida"),
    (requests.ConnectionError("http://stub/?appid=SECRET123 refused"), "sin conexión con OpenWeather (ConnectionError)"),
    (requests.ReadTimeout("slow"), "timeout"),
    (FakeResponse(400, {"cod": "400", "message": "bad appid SECRET123"}), "bad appid ***"),
])
def test_openweather_errors_are_readable_and_never_show_the_key(answer, text):
    provider, _ = _provider(answer)
    with pytest.raises(ProviderError) as info:
        provider.temperature(Location("Bilbao"))
    assert text in str(info.value) and "SECRET123" not in str(info.value)


def test_openweather_key_sources(monkeypatch, tmp_path):
    for name in ("EVC_OPENWEATHER_API_KEY", "EVC_OPENWEATHER_API_KEY_FILE", "OPENWEATHER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    key_file = tmp_path / "api_key.txt"
    assert openweather_key(key_file) is None
    key_file.write_text("from-file\n")
    assert openweather_key(key_file) == "from-file"
    monkeypatch.setenv("OPENWEATHER_API_KEY", "legacy")
    assert openweather_key(key_file) == "legacy"
    monkeypatch.setenv("EVC_OPENWEATHER_API_KEY", "env")
    assert openweather_key(key_file) == "env"


def test_scenario_file_loads(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(SCENARIO))
    assert ScenarioProvider.from_file(path).period_s == 100
    path.write_text("[1, 2]")
    with pytest.raises(ValueError):
        ScenarioProvider.from_file(path)
