"""common.web: what the web pages share."""
import pytest

from common.web import local_url


@pytest.mark.parametrize("host, url", [("127.0.0.1", "http://127.0.0.1:5051/"), ("0.0.0.0", "http://127.0.0.1:5051/"),
                                       ("::", "http://127.0.0.1:5051/"), ("cp1.lan", "http://cp1.lan:5051/")])
def test_local_url_opens_a_wildcard_bind_on_loopback(host, url):
    assert local_url(host, 5051) == url
