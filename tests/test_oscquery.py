"""OSCQuery over real HTTP/TCP beside a real OSC/UDP server, and its mDNS advertisement."""

from __future__ import annotations

import argparse
import json
from collections import Counter
from contextlib import closing
from functools import partial
import socket
import urllib.error
import urllib.request

import pytest
from pythonosc.udp_client import SimpleUDPClient
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf

from conftest import require
from helpers import free_udp_port, network_address, param_names, wait_for
from livegen.control.fake import FakeTarget
from livegen.control.mdns import OSC_TYPE, OSCJSON_TYPE, Advertisement, service_infos
from livegen.control.osc import OscServer, add_osc_arguments, osc_server_from_args
from livegen.control.oscaddress import ADDRESSES, PREFIX
from livegen.control.oscquery import (MAX_CLIENTS, UNLISTED, VOICES_LISTED, OscQueryServer, _find, answer,
                                      namespace, osc_type)
from livegen.control.setup import Controls
from livegen.engine.events import VOICE_CONTROLS
from livegen.engine.input import input_param_specs
from livegen.engine.params import ParamStore, engine_param_specs, latent_param_specs


@pytest.fixture
def target():
    with closing(FakeTarget(latent_dim=8)) as fake:
        yield fake


@pytest.fixture
def lines():
    return []


@pytest.fixture
def server(target, lines):
    osc = OscServer(target, port=0, discovery=True, log=lines.append).start()
    yield osc
    osc.stop()


def get(port: int, path: str, host: str = "127.0.0.1"):
    """(status, headers, JSON body or None) of a real HTTP GET."""
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as response:
            data = response.read()
            return response.status, response.headers, json.loads(data) if data else None
    except urllib.error.HTTPError as error:
        data = error.read()
        return error.code, error.headers, json.loads(data) if data else None


def methods(node: dict) -> dict:
    """Every node with a TYPE or no CONTENTS (an OSC method), by full path."""
    found = {}
    if "TYPE" in node or "CONTENTS" not in node:
        found[node["FULL_PATH"]] = node
    for child in node.get("CONTENTS", {}).values():
        found.update(methods(child))
    return found


def test_namespace_lists_every_table_address_and_parameter(target, server, lines):
    code, headers, root = get(server.port, "/")
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert root["FULL_PATH"] == "/"
    listed = methods(root)
    specs = target.params.specs
    for entry in ADDRESSES:
        if entry.prefix is None:
            paths = [entry.pattern]
        elif "<id>" in entry.pattern:
            paths = [entry.pattern.replace("<id>", str(voice)) for voice in (0, VOICES_LISTED - 1)]
        else:
            paths = [entry.pattern.replace("<name>", name) for name in specs]
        if entry.pattern in UNLISTED:  # other names of parameters listed under /livegen/param/, and get
            exact = {other.pattern for other in ADDRESSES if other.prefix is None}  # /livegen/input/soundcheck
            assert not [path for path in listed if path.startswith(entry.prefix) and path not in exact], \
                f"{entry.pattern} listed"
            container = (_find(root, entry.prefix) or {}).get("CONTENTS", {})  # none of them, only exact addresses
            assert {child["FULL_PATH"] for child in container.values()} <= exact, entry.prefix
            continue
        for path in paths:
            assert path in listed, f"{path} ({entry.pattern}) missing from the namespace"
            assert listed[path].get("TYPE", "") == ("".join("i" if specs[path.rpartition("/")[2]].integer else "f")
                                                    if entry.handler == "param" else
                                                    listed[path].get("TYPE", "") if entry.handler == "xy"
                                                    else osc_type(entry.args)), path
    assert {f"{PREFIX}get/<name>", f"{PREFIX}z/<i>", f"{PREFIX}input/<name>"} <= UNLISTED
    getter = listed["/livegen/get"]  # a method (its name as a string), not a container of one query per parameter
    assert getter["TYPE"] == "s" and "CONTENTS" not in getter
    assert once_each(listed, specs)
    for name, spec in specs.items():
        assert [path for path in listed if path.rpartition("/")[2] == name  # a voice's own bend is another
                and not path.startswith("/livegen/voice/")] == [f"/livegen/param/{name}"], name
        node = listed[f"/livegen/param/{name}"]
        assert node["TYPE"] == ("i" if spec.integer else "f")
        assert node["RANGE"] == [{"MIN": spec.minimum, "MAX": spec.maximum}]
        assert node["ACCESS"] == 3 and node["VALUE"] == [spec.default]
        assert node.get("UNIT") == ([spec.unit] if spec.unit else None), name
        assert node["DESCRIPTION"] == spec.description
    assert listed["/livegen/param/gain"]["UNIT"] == ["dB"]
    assert listed["/livegen/xy"]["TYPE"] == "ff" and listed["/livegen/param/z7"]["RANGE"] == [{"MIN": -4.0, "MAX": 4.0}]
    assert listed["/livegen/note"]["ACCESS"] == 2 and "VALUE" not in listed["/livegen/note"]
    for acts in ("/livegen/panic", "/livegen/voice/3/off"):  # no arguments, yet they act: not queries
        assert listed[acts]["ACCESS"] == 2 and "TYPE" not in listed[acts] and "VALUE" not in listed[acts], acts
    bend = listed[f"/livegen/voice/{VOICES_LISTED - 1}/bend"]
    assert bend["RANGE"] == [{"MIN": VOICE_CONTROLS["bend"][0], "MAX": VOICE_CONTROLS["bend"][1]}]
    assert f"/livegen/voice/{VOICES_LISTED}/bend" not in listed
    assert "0..127" in root["CONTENTS"]["livegen"]["CONTENTS"]["voice"]["DESCRIPTION"]
    assert listed["/livegen/record"]["VALUE"] == [0]  # from the engine's status
    code, _, container = get(server.port, "/livegen/param")  # a container answers its own part
    assert code == 200 and container["FULL_PATH"] == "/livegen/param" and set(container["CONTENTS"]) == set(specs)
    assert any("reachable from this machine alone" in line for line in lines), lines
    assert server.advertisement is None


def test_value_follows_osc_over_udp(target, server):
    code, _, body = get(server.port, "/livegen/param/gain?VALUE")
    assert (code, body) == (200, {"VALUE": [-6.0]})
    client = SimpleUDPClient("127.0.0.1", server.port)
    client.send_message("/livegen/param/gain", -12.5)
    client.send_message("/livegen/xy", [0.25, 0.75])
    wait_for(lambda: get(server.port, "/livegen/param/gain?VALUE")[2] == {"VALUE": [-12.5]}, 10,
             "?VALUE of gain to follow the OSC message")
    wait_for(lambda: get(server.port, "/livegen/xy?VALUE")[2] == {"VALUE": [0.25, 0.75]}, 10, "?VALUE of xy")
    assert get(server.port, "/livegen/param/quality?RANGE")[2] == {"RANGE": [{"MIN": 0, "MAX": 16}]}
    client.send_message("/livegen/z/3", 1.5)  # unlisted, still an address: the listed z3 follows it
    wait_for(lambda: get(server.port, "/livegen/param/z3?VALUE")[2] == {"VALUE": [1.5]}, 10, "?VALUE of z3")
    assert get(server.port, "/livegen/z/3")[0] == 404


def once_each(listed: dict, specs: dict) -> bool:
    """What an app browsing the tree shows (a control per node with a TYPE, named by its
    DESCRIPTION): each parameter once, at /livegen/param/<name>; none of them a second time."""
    shown = Counter(node.get("DESCRIPTION") for path, node in listed.items()
                    if node.get("TYPE") and not path.startswith("/livegen/voice/"))
    assert len({spec.description for spec in specs.values()}) == len(specs)  # a description names one
    twice = {name: shown[spec.description] for name, spec in specs.items() if shown[spec.description] != 1}
    assert not twice, twice
    return {path for path in listed if path.startswith("/livegen/param/")} == {f"/livegen/param/{n}" for n in specs}


def test_audio_input_settings_are_listed_once_under_param():
    """With an audio input (`--input-device`) its settings are parameters `input_*`: listed at
    /livegen/param/input_<name> alone, /livegen/input/<name> working over OSC only (the sound check,
an action, is listed under /livegen/input/)."""
    params = ParamStore(engine_param_specs() + latent_param_specs(8) + input_param_specs())
    root = namespace(params, dict)
    listed = methods(root)
    assert "/livegen/param/input_gain" in listed
    assert set(_find(root, "/livegen/input")["CONTENTS"]) == {"soundcheck"}  # an action, not a parameter
    assert once_each(listed, params.specs)
    code, body = answer("/livegen/input/gain?VALUE", params=params, status=dict, osc_port=9000)
    assert code == 404 and "GET / lists" in body["ERROR"]


def test_host_info_names_the_udp_port(server):
    code, headers, info = get(server.port, "/?HOST_INFO")
    assert code == 200 and headers["Content-Type"] == "application/json"
    assert info["NAME"] == "livegen" and info["OSC_PORT"] == server.port and info["OSC_TRANSPORT"] == "UDP"
    assert info["OSC_IP"] == "127.0.0.1"
    assert info["EXTENSIONS"]["VALUE"] and info["EXTENSIONS"]["RANGE"] and info["EXTENSIONS"]["UNIT"]
    assert not info["EXTENSIONS"]["LISTEN"]  # no WebSocket: nothing claimed that is not done
    assert get(server.port, "/livegen/xy?HOST_INFO")[2] == info  # the path does not matter
    assert server.status()["osc_query"] == f"http://127.0.0.1:{server.port}/"


def test_errors_are_clear(server):
    code, headers, body = get(server.port, "/livegen/nothing")
    assert code == 404 and headers["Content-Type"] == "application/json"
    assert "/livegen/nothing" in body["ERROR"] and "GET /" in body["ERROR"]
    code, _, body = get(server.port, "/livegen/xy?LOUDNESS")
    assert code == 400 and "LOUDNESS" in body["ERROR"] and "VALUE" in body["ERROR"]
    assert get(server.port, "/livegen/note?VALUE")[:3:2] == (204, None)  # write-only
    assert get(server.port, "/livegen/preset?TYPE")[::2] == (200, {})  # a container has no type
    with pytest.raises(urllib.error.HTTPError) as refused:  # nothing changes the engine over HTTP
        urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{server.port}/livegen/xy", data=b"{}",
                                                      method="POST"), timeout=5)
    assert refused.value.code == 501 and refused.value.headers["Content-Type"] == "application/json"
    assert "GET" in json.loads(refused.value.read())["ERROR"]


def test_url_on_all_interfaces_names_an_address(target):
    """Bound to 0.0.0.0, the URL said names an address an app can reach, not 0.0.0.0."""
    address = network_address()
    require(address is not None, "a non-loopback IPv4 address on this machine")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    query = OscQueryServer(target, "0.0.0.0", port, status=target.status).start()
    try:
        assert query.url == f"http://{address}:{port}/"
        assert get(port, "/?HOST_INFO", host=address)[2]["OSC_IP"] == address  # where the client came in
    finally:
        query.stop()


def test_http_survives_garbage_and_a_crowd(server):
    """Garbage, an overlong request line and more idle connections than it serves at once: each
    is refused or closed, and the next client is answered."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"\x00\xffGARBAGE\r\n\r\n")
        head, _, body = raw.makefile("rb").read().partition(b"\r\n\r\n")  # read to the close
        assert head.startswith(b"HTTP/1.1 400 ") and b"application/json" in head, head
        assert "GET /?HOST_INFO" in json.loads(body)["ERROR"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        raw.sendall(b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
        assert b" 414 " in raw.recv(4096).split(b"\r\n")[0]
    crowd = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(MAX_CLIENTS)]
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # no place left: closed at once
            get(server.port, "/?HOST_INFO")
    finally:
        for idle in crowd:
            idle.close()
    wait_for(lambda: _answers(server.port), 10, "OSCQuery to answer once the crowd left")
    assert server.alive


def _answers(port: int) -> bool:
    try:
        return get(port, "/?HOST_INFO")[0] == 200
    except (urllib.error.URLError, ConnectionError):
        return False


def test_taken_tcp_port_warns_and_osc_plays_on(target, lines):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        osc = OscServer(target, port=port, discovery=True, log=lines.append).start()
        try:
            assert osc.port == port and osc.query is None
            assert any("OSCQuery is off" in line and f"TCP 127.0.0.1:{port}" in line for line in lines), lines
            assert "OSCQuery" not in Controls(osc).describe()
            SimpleUDPClient("127.0.0.1", port).send_message("/livegen/param/gain", -3)
            assert target.wait_for(lambda: target.params.get("gain") == -3.0)
        finally:
            osc.stop()


def test_start_line_no_discovery_and_stop(target):
    parser = argparse.ArgumentParser()
    add_osc_arguments(parser)
    osc = osc_server_from_args(target, parser.parse_args(["--osc-port", "0"]), log=lambda text: None).start()
    port = osc.port
    try:
        assert osc.query is not None and osc.query.osc_port == port
        assert f"OSCQuery http://127.0.0.1:{port}/" in Controls(osc).describe()
    finally:
        osc.stop()
    with pytest.raises(urllib.error.URLError):  # stopped with the OSC server
        get(port, "/")
    quiet = osc_server_from_args(target, parser.parse_args(["--osc-port", "0", "--no-discovery"])).start()
    try:
        assert quiet.query is None and quiet.advertisement is None
        with pytest.raises(urllib.error.URLError):
            get(quiet.port, "/")
        assert "OSCQuery" not in Controls(quiet).describe()
    finally:
        quiet.stop()


def test_allow_list_keeps_others_out_of_http_too(target):
    osc = OscServer(target, port=0, allow=["10.0.0.0/8"], discovery=True, log=lambda text: None).start()
    try:
        with pytest.raises((urllib.error.URLError, ConnectionError)):
            get(osc.port, "/")
    finally:
        osc.stop()


def test_service_infos_advertised():
    """What goes out over mDNS: both types at the OSC port, this machine's addresses."""
    jsoninfo, oscinfo = service_infos("livegen", ["192.0.2.2"], osc_port=9000, http=True, server="stage.local.")
    assert (jsoninfo.type, jsoninfo.name) == (OSCJSON_TYPE, "livegen._oscjson._tcp.local.")
    assert (oscinfo.type, oscinfo.name) == (OSC_TYPE, "livegen._osc._udp.local.")
    assert jsoninfo.port == oscinfo.port == 9000 and oscinfo.parsed_addresses() == ["192.0.2.2"]
    (only,) = service_infos("livegen-2", ["192.0.2.2"], osc_port=9001, http=False, server="stage.local.")
    assert only.type == OSC_TYPE  # OSCQuery off: only plain OSC is advertised


@pytest.mark.slow
def test_mdns_browse_finds_two_instances(target):
    """A real zeroconf browse on this machine's network address finds `_oscjson._tcp` and
    `_osc._udp`, a second instance under another name, and HOST_INFO at the advertised place."""
    address = network_address()
    require(address is not None, "a non-loopback IPv4 address on this machine")
    lines: list[str] = []
    first = OscServer(target, host=address, port=0, discovery=True, log=lines.append).start()
    assert first.advertisement.done.wait(30), lines  # the second starts once the first is known
    second = OscServer(target, host=address, port=0, discovery=True, log=lines.append).start()
    browser_zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    seen: dict[str, set] = {OSCJSON_TYPE: set(), OSC_TYPE: set()}

    def on_change(zeroconf, service_type, name, state_change):
        if state_change is ServiceStateChange.Added:
            seen[service_type].add(name)

    browser = ServiceBrowser(browser_zc, [OSCJSON_TYPE, OSC_TYPE], handlers=[on_change])
    try:
        for osc in (first, second):
            assert osc.advertisement.done.wait(30), lines
            assert osc.advertisement.name is not None, lines
        assert first.advertisement.name != second.advertisement.name
        assert all(name.startswith("livegen") for name in (first.advertisement.name, second.advertisement.name))
        for osc in (first, second):
            name = osc.advertisement.name
            wait_for(lambda: f"{name}.{OSCJSON_TYPE}" in seen[OSCJSON_TYPE] and f"{name}.{OSC_TYPE}" in seen[OSC_TYPE],
                     30, lambda: f"a browse to find {name} (seen {seen}; log {lines})")
            info = browser_zc.get_service_info(OSCJSON_TYPE, f"{name}.{OSCJSON_TYPE}", timeout=5000)
            assert info is not None and info.port == osc.port and address in info.parsed_addresses()
            code, _, host = get(info.port, "/?HOST_INFO", host=info.parsed_addresses()[0])
            assert code == 200 and host["OSC_PORT"] == osc.port and host["OSC_IP"] == address
        assert sum("advertised as" in line for line in lines) == 2, lines
    finally:
        browser.cancel()
        browser_zc.close()
        first.stop()
        second.stop()


@pytest.mark.slow
def test_mdns_two_started_at_once_take_true_distinct_names():
    """Two advertisers started in the same instant (as two livegens started together) end up
    with different instance names, each the same for `_oscjson._tcp` and `_osc._udp`, and the
    name each reports is the one a browse finds at its own port."""
    address = network_address()
    require(address is not None, "a non-loopback IPv4 address on this machine")
    lines: list[str] = []
    ports = [free_udp_port(), free_udp_port()]
    while ports[1] == ports[0]:
        ports[1] = free_udp_port()
    adverts = [Advertisement(address, port, http=True, log=lines.append) for port in ports]
    for advert in adverts:  # no waiting between them: both look the name up before either holds it
        advert.start()
    browser_zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    try:
        for advert in adverts:
            assert advert.done.wait(60), lines
            assert advert.name is not None and advert.name.startswith("livegen"), lines
        names = [advert.name for advert in adverts]
        assert names[0] != names[1], lines
        for advert in adverts:
            assert [info.name for info in advert.infos] == [f"{advert.name}.{kind}" for kind in (OSCJSON_TYPE, OSC_TYPE)]
            assert f"advertised as {advert.name!r}" in " ".join(lines), lines
            for name in (f"{advert.name}.{kind}" for kind in (OSCJSON_TYPE, OSC_TYPE)):
                info = wait_for(partial(browser_zc.get_service_info, name.partition(".")[2], name, timeout=3000), 30,
                                f"{name} to resolve (log {lines})")
                assert info.port == advert.osc_port, (name, info.port, advert.osc_port)
    finally:
        browser_zc.close()
        for advert in adverts:
            advert.close()


@pytest.mark.slow
def test_mdns_name_held_by_two_goes_to_the_smaller_host_and_port():
    """Two holders of one name (both probed before either answered): each asks for it again, and
    the one with the greater (host, port) sees the other and gives way; the smaller keeps it."""
    address = network_address()
    require(address is not None, "a non-loopback IPv4 address on this machine")
    lines: list[str] = []
    advert = Advertisement(address, 40100, http=True, log=lines.append).start()
    rival = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    try:
        assert advert.done.wait(60) and advert.name is not None, lines
        server = advert.infos[0].server
        for port, yields in ((40101, False), (40099, True)):  # a goodbye leaves the cache 1 s later: larger first
            infos = service_infos(advert.name, [address], osc_port=port, http=True, server=server)
            for info in infos:
                rival.register_service(info, cooperating_responders=True)  # no probe: it holds the name too
            assert advert._contested(advert._zeroconf, advert.infos, server) is yields, port
            rival.unregister_all_services()
    finally:
        rival.close()
        advert.close()


def test_mdns_failure_is_one_line():
    lines: list[str] = []
    advert = Advertisement("198.51.100.7", 9000, http=True, log=lines.append).start()  # not this machine's
    try:
        assert advert.done.wait(30)
    finally:
        advert.close()
    assert advert.name is None and len(lines) == 1 and "mDNS advertisement failed" in lines[0], lines


def test_play_answers_oscquery_for_the_real_engine(live_play):
    """`livegen play --headless`: OSCQuery at the OSC port's number, with the real model's latent
    size and parameters, values that follow OSC, and the start line naming the URL."""
    play = live_play()
    url = f"http://127.0.0.1:{play.port}/"
    play.wait_for(lambda: f"OSCQuery {url}" in play.log, 30, "the start line naming OSCQuery")
    assert play.status()["osc_query"] == url
    code, _, root = get(play.port, "/")
    assert code == 200, play.log
    listed = methods(root)
    names = param_names(play.client)
    latent = [name for name in names if name[:1] == "z" and name[1:].isdigit()]
    assert latent and not [p for p in listed if p.startswith("/livegen/z/")]  # z<i> once, under /livegen/param/
    assert {f"/livegen/param/{name}" for name in names} == {p for p in listed if p.startswith("/livegen/param/")}
    assert listed["/livegen/model"]["ACCESS"] == 3 and listed["/livegen/model"]["VALUE"] == [play.status()["model"]]
    play.send("/livegen/param/glide", 1.25)
    play.wait_for(lambda: get(play.port, "/livegen/param/glide?VALUE")[2] == {"VALUE": [1.25]}, 30,
                  "?VALUE of glide to follow /livegen/param/glide 1.25")
    assert get(play.port, "/?HOST_INFO")[2]["OSC_PORT"] == play.port
