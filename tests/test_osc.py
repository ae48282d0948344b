"""OSC control over real UDP: python-osc and liblo's oscsend/oscdump as clients."""

from __future__ import annotations

import argparse
import math
import socket
import struct
import subprocess
import time

import numpy as np
import pytest
from pythonosc.udp_client import SimpleUDPClient

from conftest import require_binary
from helpers import free_udp_port, udp_port_taken, wait_for
from livegen.control.fake import FakeTarget
from livegen.control.osc import OscServer, add_osc_arguments, listening_line, listening_port, osc_server_from_args
from livegen.control.oscdispatch import UNKNOWN_REPLY_SECONDS, nearest_address
from livegen.control.oscwire import encode_bundle, encode_message, parse_packet
from livegen.errors import DeviceError, ParameterError


@pytest.fixture
def target():
    fake = FakeTarget(latent_dim=8)
    yield fake
    fake.close()


@pytest.fixture
def server(target):
    osc = OscServer(target, port=0).start()
    yield osc
    osc.stop()


@pytest.fixture
def client(server):
    c = SimpleUDPClient("127.0.0.1", server.port)
    yield c
    c.close() if hasattr(c, "close") else None


def replies(client, timeout=1.0, until=None):
    """Collect (address, args) replies until `until(address)` or a quiet `timeout`."""
    out = []
    while True:
        data = client.receive(timeout)  # b"" on timeout
        if not data:
            return out
        for message in parse_packet(data):
            out.append((message.address, message.args))
            if until is not None and until(message.address):
                return out


def test_param_xy_z_and_get_reply(target, server, client):
    client.send_message("/livegen/xy", [0.25, 0.75])
    client.send_message("/livegen/param/gain", -12)  # an int is accepted
    client.send_message("/livegen/z/3", 1.5)
    assert target.wait_for(lambda: target.params.get("z3") == 1.5)
    assert target.params.get("x") == 0.25 and target.params.get("y") == 0.75
    assert target.params.get("gain") == -12.0
    client.send_message("/livegen/get/gain", [])
    got = replies(client, until=lambda a: a == "/livegen/param/gain")
    assert ("/livegen/param/gain", (-12.0,)) in got
    assert all(e.source.startswith("osc:127.0.0.1:") for e in target.applied)


def test_status_replies_name_value_pairs(server, client):
    client.send_message("/livegen/status", [])
    (address, args), = replies(client, until=lambda a: a == "/livegen/status")
    assert address == "/livegen/status"
    pairs = dict(zip(args[::2], args[1::2]))
    for key in ("xruns", "samplerate", "blocksize", "voices", "recording", "load"):
        assert key in pairs
    assert pairs["samplerate"] == 48000


def test_out_of_range_is_clamped_and_reported(target, server, client):
    client.send_message("/livegen/param/gain", 1000.0)
    got = replies(client, until=lambda a: a == "/livegen/error")
    assert got and got[0][0] == "/livegen/error" and "clamped to 12" in got[0][1][0]
    assert target.wait_for(lambda: target.params.get("gain") == 12.0)


def test_notes_record_and_presets(target, server, client):
    client.send_message("/livegen/note", [60, 100])
    assert target.wait_for(lambda: target.voices.get(60.0) == 100)
    client.send_message("/livegen/note", [60, 0])
    assert target.wait_for(lambda: 60.0 not in target.voices)
    client.send_message("/livegen/record", 1)
    assert target.wait_for(lambda: target.recording)
    client.send_message("/livegen/param/drift", 0.3)
    client.send_message("/livegen/preset/store", 5)
    assert target.wait_for(lambda: 5 in target.presets)
    client.send_message("/livegen/param/drift", 0.9)
    assert target.wait_for(lambda: target.params.get("drift") == pytest.approx(0.9))
    client.send_message("/livegen/preset/recall", 5)
    assert target.wait_for(lambda: target.params.get("drift") == pytest.approx(0.3))


def test_voice_addresses_post_per_voice_events(target, server, client):
    """Each `/livegen/voice/<id>/...` address, ints and floats alike, posts that voice's event."""
    client.send_message("/livegen/voice/2/bend", 2)  # an int: semitones
    client.send_message("/livegen/voice/2/x", 0.25)
    client.send_message("/livegen/voice/2/y", -0.5)
    client.send_message("/livegen/voice/7/xy", [-0.125, 1])
    client.send_message("/livegen/voice/7/pressure", 0.75)
    client.send_message("/livegen/voice/2/note", [64, 90])
    client.send_message("/livegen/voice/127/note", [60.5, 100.0])  # a float pitch and velocity
    client.send_message("/livegen/voice/0/note", [48, 80])
    client.send_message("/livegen/voice/2/note", [64, 0])  # velocity 0: that voice's note off
    client.send_message("/livegen/note", [62, 70])  # a plain note is still known by its pitch
    assert target.wait_for(lambda: len(target.applied) == 11)
    got = [(e.type, e.voice, e.name, e.value, e.pitch, e.velocity) for e in target.applied]
    assert got == [
        ("voice", 2, "bend", 2.0, None, None),
        ("voice", 2, "x", 0.25, None, None),
        ("voice", 2, "y", -0.5, None, None),
        ("voice", 7, "x", -0.125, None, None),
        ("voice", 7, "y", 1.0, None, None),
        ("voice", 7, "pressure", 0.75, None, None),
        ("note_on", 2, None, None, 64.0, 90),
        ("note_on", 127, None, None, 60.5, 100),
        ("note_on", 0, None, None, 48.0, 80),
        ("note_off", 2, None, None, 64.0, None),
        ("note_on", None, None, None, 62.0, 70),
    ]
    assert all(e.source.startswith("osc:127.0.0.1:") for e in target.applied)
    assert target.voices == {60.5: 100, 48.0: 80, 62.0: 70}


@pytest.mark.parametrize("address, args, name, value, message", [
    ("/livegen/voice/4/bend", [200.0], "bend", 96.0, "200 clamped to 96 (voice bend range -96..96)"),
    ("/livegen/voice/4/bend", [-97], "bend", -96.0, "-97 clamped to -96 (voice bend range -96..96)"),
    ("/livegen/voice/4/x", [1.5], "x", 1.0, "1.5 clamped to 1 (voice x range -1..1)"),
    ("/livegen/voice/4/y", [-2], "y", -1.0, "-2 clamped to -1 (voice y range -1..1)"),
    ("/livegen/voice/4/pressure", [1.2], "pressure", 1.0, "1.2 clamped to 1 (voice pressure range 0..1)"),
    ("/livegen/voice/4/pressure", [-0.1], "pressure", 0.0, "-0.1 clamped to 0 (voice pressure range 0..1)"),
])
def test_voice_values_out_of_range_are_clamped_and_reported(target, server, client, address, args, name, value, message):
    """As a parameter's: the clamped value is played and the sender told, naming the range."""
    client.send_message(address, args)
    got = replies(client, until=lambda a: a == "/livegen/error")
    assert got and got[-1] == ("/livegen/error", (f"{address}: {message}",)), got
    assert target.wait_for(lambda: target.applied)
    (event,) = target.applied
    assert (event.type, event.voice, event.name, event.value) == ("voice", 4, name, value)


def test_voice_xy_clamps_each_axis_and_posts_both(target, server, client):
    client.send_message("/livegen/voice/5/xy", [3.0, 0.5])
    got = replies(client, until=lambda a: a == "/livegen/error")
    assert got[-1] == ("/livegen/error", ("/livegen/voice/5/xy: 3 clamped to 1 (voice x range -1..1)",))
    assert target.wait_for(lambda: len(target.applied) == 2)
    assert [(e.voice, e.name, e.value) for e in target.applied] == [(5, "x", 1.0), (5, "y", 0.5)]


@pytest.mark.parametrize("payload, fragment", [
    (b"\x00\x01garbage!!!", "neither an OSC message"),
    (b"\x00\x01garbage", "not a multiple of 4"),
    (encode_message("/livegen/param/gain", (float("nan"),)), "not finite"),
    (encode_message("/livegen/param/gain", (float("inf"),)), "not finite"),
    (encode_message("/livegen/param/gain", ("loud",)), "must be numbers"),
    (encode_message("/livegen/param/nosuch", (1.0,)), "no parameter 'nosuch'"),
    (encode_message("/livegen/z/99", (1.0,)), "no latent dimension"),
    (encode_message("/other/thing", (1.0,)), "unknown address"),
    (encode_message("/livegen/xy", (0.5,)), "expected 2 numbers"),
    (encode_message("/livegen/note", (200, 100)), "pitch 200"),
    (encode_message("/livegen/preset/recall", (1.5,)), "whole number"),
    (encode_message("/livegen/subscribe", (float("inf"),)), "UDP port"),
    (encode_message("/livegen/subscribe", (float("nan"),)), "UDP port"),
    (b"/livegen/xy\x00,ff\x00" + struct.pack(">f", 0.5), "packet ends inside"),
    (b"/livegen/xy\x00,qq\x00" + b"\x00" * 8, "unsupported type tag"),
    (encode_message("/livegen/xy", (0.5, 0.5)) + b"\x00" * 9000, "exceeds"),
    (b"#bundle\x00" + b"\x00" * 7 + b"\x01" + struct.pack(">i", -4), "positive multiple of 4"),
    (encode_message("/livegen/voice/128/bend", (1.0,)), "voice id '128' refused; ids are whole numbers 0..127"),
    (encode_message("/livegen/voice/-1/note", (60, 100)), "voice id '-1' refused; ids are whole numbers 0..127"),
    (encode_message("/livegen/voice/two/x", (0.1,)), "voice id 'two' refused"),
    (encode_message("/livegen/voice/1.5/y", (0.1,)), "voice id '1.5' refused"),
    (encode_message("/livegen/voice/3/bend", ("up",)), "must be numbers (int or float), got str"),
    (encode_message("/livegen/voice/3/pressure", (float("nan"),)), "not finite"),
    (encode_message("/livegen/voice/3/xy", (0.5,)), "expected 2 numbers"),
    (encode_message("/livegen/voice/3/note", (130, 100)), "pitch 130 outside 0..127"),
    (encode_message("/livegen/voice/3/slide", (0.5,)), "a voice takes /livegen/voice/<id>/note|bend|x|y|xy|pressure"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_malformed_input_changes_nothing_and_is_reported(target, server, client, payload, fragment):
    before = target.params.snapshot()
    posted = server.stats["posted"]
    client._sock.sendto(payload, ("127.0.0.1", server.port))
    got = replies(client, until=lambda a: a == "/livegen/error")
    assert got, "no /livegen/error reply"
    assert got[-1][0] == "/livegen/error" and fragment in got[-1][1][0], got
    client.send_message("/livegen/status", [])  # answered after all that came before it
    assert replies(client, until=lambda a: a == "/livegen/status")[-1][0] == "/livegen/status"
    assert target.params.snapshot() == before
    assert server.stats["posted"] == posted, "nothing reaches the engine"


def test_bundle_with_future_time_tag_acts_at_its_time(target, server, client):
    due = time.time() + 0.4
    client._sock.sendto(encode_bundle([encode_message("/livegen/param/drift", (0.6,)),
                                       encode_message("/livegen/param/glide", (1.0,))], time=due),
                        ("127.0.0.1", server.port))
    # The receive path is not blocked by the waiting bundle:
    client.send_message("/livegen/param/gain", 0.0)
    assert target.wait_for(lambda: target.params.get("gain") == 0.0)
    assert target.params.get("drift") == 0.0
    assert target.wait_for(lambda: target.params.get("glide") == 1.0)
    applied = [e for e in target.applied if e.name == "drift"][0]
    applied_at = applied.sample / target.samplerate
    first = target.applied[0].sample / target.samplerate
    assert applied_at - first > 0.2, "bundle applied too early"
    immediate = encode_bundle([encode_message("/livegen/param/drift", (0.1,))], time=None)
    client._sock.sendto(immediate, ("127.0.0.1", server.port))
    assert target.wait_for(lambda: target.params.get("drift") == pytest.approx(0.1))


@pytest.mark.slow
def test_subscribe_sends_changes_from_others_but_not_echoes(target, server, client):
    client.send_message("/livegen/subscribe", [])
    initial = replies(client, timeout=0.5)
    # the port first (as before leases), then the lease in seconds
    assert ("/livegen/subscribed", (client._sock.getsockname()[1], 60.0)) in initial
    assert any(a == "/livegen/param/gain" for a, _ in initial)
    # a change from this subscriber is not echoed back
    client.send_message("/livegen/param/drift", 0.5)
    assert target.wait_for(lambda: target.params.get("drift") == 0.5)
    # a change from another source (say MIDI) is sent
    from livegen.engine.events import param
    target.post(param("z2", -2.0, source="midi:test"))
    got = replies(client, timeout=0.5)
    addresses = [a for a, _ in got]
    assert "/livegen/param/z2" in addresses and "/livegen/z/2" in addresses
    assert "/livegen/param/drift" not in addresses
    client.send_message("/livegen/unsubscribe", [])
    replies(client, timeout=0.2)
    target.post(param("z1", 1.0, source="midi:test"))
    assert target.wait_for(lambda: target.params.get("z1") == 1.0)
    assert not any(a == "/livegen/param/z1" for a, _ in replies(client, timeout=0.3))


@pytest.mark.slow
def test_subscribers_receive_the_voices_points_as_they_move(target, server, client, monkeypatch):
    """Status `voices_xy` goes out as `/livegen/voices_xy` when it changes; no arguments once none sounds."""
    points, status = [], target.status
    monkeypatch.setattr(target, "status", lambda: {**status(), **({"voices_xy": list(points)} if points else {})})
    client.send_message("/livegen/subscribe", [])
    assert replies(client, until=lambda a: a == "/livegen/subscribed")
    points[:] = [0.25, 0.5, 0.75, 1.0]
    got = replies(client, until=lambda a: a == "/livegen/voices_xy")
    assert got and got[-1] == ("/livegen/voices_xy", (0.25, 0.5, 0.75, 1.0)), got
    points[:] = []
    got = replies(client, until=lambda a: a == "/livegen/voices_xy")
    assert got and got[-1] == ("/livegen/voices_xy", ()), got


@pytest.mark.slow
def test_subscription_coalesces_to_30_hz(target, server, client):
    from livegen.engine.events import param
    client.send_message("/livegen/subscribe", [])
    replies(client, timeout=0.3)
    for i in range(2000):
        target.post(param("z0", (i % 100) / 100, source="ui"))
        if i % 100 == 0:
            time.sleep(0.005)
    got = [args for a, args in replies(client, timeout=0.5) if a == "/livegen/param/z0"]
    assert 1 <= len(got) < 100
    assert got[-1][0] == pytest.approx(target.params.get("z0"))


def _udp():
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    return sock


def _receive(sock, seconds, until=None):
    """(address, args) of everything `sock` receives within `seconds` (or up to `until(address)`)."""
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        for m in parse_packet(data):
            out.append((m.address, m.args))
            if until is not None and until(m.address):
                return out
    return out


def _subscribed(address):
    return address == "/livegen/subscribed"


@pytest.mark.slow
def test_subscriptions_are_leases_that_expire_unless_renewed(target):
    from livegen.engine.events import param

    osc = OscServer(target, port=0, lease=1.5).start()
    renewing, silent = _udp(), _udp()
    to = ("127.0.0.1", osc.port)
    try:
        for sock in (renewing, silent):
            sock.sendto(encode_message("/livegen/subscribe", ()), to)
            got = _receive(sock, 1.0, until=_subscribed)
            assert got[-1] == ("/livegen/subscribed", (sock.getsockname()[1], 1.5))
        assert osc.status()["osc_subscribers"] == 2
        # `renewing` plays for 2.5 s (any message from its socket renews the lease), then subscribes
        # again; `silent` says nothing after subscribing
        started = time.monotonic()
        while time.monotonic() - started < 2.5:
            renewing.sendto(encode_message("/livegen/param/drift", (0.5,)), to)
            time.sleep(0.1)
        renewing.sendto(encode_message("/livegen/subscribe", ()), to)
        assert _receive(renewing, 1.0, until=_subscribed)[-1][0] == "/livegen/subscribed"
        assert ("/livegen/unsubscribed", (silent.getsockname()[1],)) in _receive(silent, 0.2)
        assert osc.status()["osc_subscribers"] == 1 and osc.stats["subscribers_expired"] == 1
        target.post(param("z1", 1.25, source="midi:test"))
        assert ("/livegen/param/z1", (1.25,)) in _receive(renewing, 0.5)
        assert not any(a == "/livegen/param/z1" for a, _ in _receive(silent, 0.3))
        # once `renewing` goes quiet its lease ends as well
        got = _receive(renewing, 3.0, until=lambda a: a == "/livegen/unsubscribed")
        assert got[-1] == ("/livegen/unsubscribed", (renewing.getsockname()[1],))
        assert osc.status()["osc_subscribers"] == 0
    finally:
        renewing.close()
        silent.close()
        osc.stop()


@pytest.mark.slow
def test_full_table_takes_newcomers_once_leases_end(target, monkeypatch):
    from livegen.control import osc as osc_module

    monkeypatch.setattr(osc_module, "MAX_SUBSCRIBERS", 2)
    osc = OscServer(target, port=0, lease=1.0).start()
    client = _udp()
    try:
        for port in (40001, 40002, 40003):
            client.sendto(encode_message("/livegen/subscribe", (port,)), ("127.0.0.1", osc.port))
        got = _receive(client, 1.0, until=lambda a: a == "/livegen/error")
        assert [args[0] for a, args in got if a == "/livegen/subscribed"] == [40001, 40002]
        assert any(a == "/livegen/error" and "2 subscribers already" in args[0] for a, args in got)
        # nobody renews (and nobody listens on those ports): the leases run out
        wait_for(lambda: osc.status()["osc_subscribers"] == 0, 10, "the two leases to run out")
        client.sendto(encode_message("/livegen/subscribe", (40003,)), ("127.0.0.1", osc.port))
        assert ("/livegen/subscribed", (40003, 1.0)) in _receive(client, 1.0, until=_subscribed)
    finally:
        client.close()
        osc.stop()


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(socket, "MSG_ERRQUEUE"), reason="ICMP errors on unconnected UDP sockets are a Linux feature")
def test_subscriber_whose_port_is_closed_is_dropped(target):
    """A subscriber's socket closes: the kernel answers our sends with ICMP port unreachable,
    which (IP_RECVERR) names the destination; it is dropped long before its lease would end,
    and replies to others keep flowing."""
    from livegen.engine.events import param

    osc = OscServer(target, port=0, lease=60.0).start()
    gone, staying = _udp(), _udp()
    try:
        for sock in (gone, staying):
            sock.sendto(encode_message("/livegen/subscribe", ()), ("127.0.0.1", osc.port))
            assert _receive(sock, 1.0, until=_subscribed)[-1][0] == "/livegen/subscribed"
        gone.close()
        deadline = time.monotonic() + 3.0
        i = 0
        while osc.status()["osc_subscribers"] == 2 and time.monotonic() < deadline:
            i += 1
            target.post(param("z0", (i % 10) / 10, source="midi:test"))
            time.sleep(0.05)
        assert osc.status()["osc_subscribers"] == 1
        assert osc.stats["subscribers_unreachable"] == 1
        # a reply to a client that has already exited (oscsend's way) must not cost the next reply
        hit_and_run = _udp()
        hit_and_run.sendto(encode_message("/livegen/status", ()), ("127.0.0.1", osc.port))
        hit_and_run.close()
        time.sleep(0.1)
        for _ in range(3):
            staying.sendto(encode_message("/livegen/get/gain", ()), ("127.0.0.1", osc.port))
        replies = []

        def third_reply(address):
            replies.append(address)
            return replies.count("/livegen/param/gain") >= 3

        got = [m for m in _receive(staying, 5.0, until=third_reply) if m[0] == "/livegen/param/gain"]
        assert len(got) >= 3, osc.stats
    finally:
        staying.close()
        osc.stop()


def test_lease_must_be_positive(target):
    with pytest.raises(ParameterError, match="lease"):
        OscServer(target, port=0, lease=0)


def test_allow_list_drops_other_hosts_silently(target):
    osc = OscServer(target, port=0, allow=["10.1.2.0/24"]).start()
    try:
        c = SimpleUDPClient("127.0.0.1", osc.port)
        c.send_message("/livegen/param/gain", 3.0)
        c.send_message("/livegen/status", [])
        assert replies(c, timeout=0.4) == []
        assert target.params.get("gain") == -6.0
        assert osc.stats["refused"] == 2
    finally:
        osc.stop()


def test_port_in_use_names_the_option(target, server):
    with pytest.raises(DeviceError, match="--osc-port"):
        OscServer(target, port=server.port).start()
    with pytest.raises(ParameterError, match="--osc-allow"):
        OscServer(target, port=0, allow=["not-a-network"])


def test_cli_arguments(target):
    parser = argparse.ArgumentParser()
    add_osc_arguments(parser)
    args = parser.parse_args(["--osc-port", "0", "--osc-allow", "127.0.0.0/8", "192.168.0.0/16"])
    osc = osc_server_from_args(target, args).start()
    try:
        assert osc.port > 0 and osc.host == "127.0.0.1" and len(osc.allow) == 2
    finally:
        osc.stop()
    assert osc_server_from_args(target, parser.parse_args(["--no-osc"])) is None


@pytest.mark.live
def test_liblo_oscsend_and_oscdump(target, server):
    oscsend = require_binary("oscsend")
    oscdump = require_binary("oscdump")
    dump_port = free_udp_port()
    dump = subprocess.Popen([oscdump, "-L", str(dump_port)], stdout=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: udp_port_taken(dump_port), 10, f"oscdump listening on {dump_port}")
        subprocess.run([oscsend, "127.0.0.1", str(server.port), "/livegen/param/drift", "f", "0.25"], check=True)
        subprocess.run([oscsend, "127.0.0.1", str(server.port), "/livegen/xy", "if", "1", "0.5"], check=True)
        subprocess.run([oscsend, "127.0.0.1", str(server.port), "/livegen/note", "ii", "64", "90"], check=True)
        assert target.wait_for(lambda: target.params.get("drift") == 0.25 and target.params.get("x") == 1.0)
        assert target.wait_for(lambda: target.voices.get(64.0) == 90)
        # oscsend's own port is gone after it exits: subscribe oscdump's port instead
        subprocess.run([oscsend, "127.0.0.1", str(server.port), "/livegen/subscribe", "i", str(dump_port)], check=True)
        lines = []

        def dumped(address: str, value: str) -> bool:
            """Read oscdump's lines until one shows `address` with `value` (or 5 s passed)."""
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                lines.append(dump.stdout.readline())
                if address in lines[-1] and value in lines[-1]:
                    return True
            return False

        # the subscription first sends the current values: drift among them
        assert dumped("/livegen/param/drift", "0.25"), lines
        SimpleUDPClient("127.0.0.1", server.port).send_message("/livegen/param/gain", 4.5)
        assert dumped("/livegen/param/gain", "4.5"), lines
    finally:
        dump.terminate()
        dump.wait(5)


def test_stop_releases_the_port(target):
    osc = OscServer(target, port=0).start()
    port = osc.port
    osc.stop()
    again = OscServer(target, port=port).start()
    again.stop()
    assert not math.isnan(port)


def test_params_replies_the_whole_table_in_bundles(target, server, client):
    """`/livegen/params`: one message per parameter (index, count, name, range, default, unit,
    integer, step, description), in bundles under the packet limit, enough to draw every slider."""
    from livegen.control.oscaddress import PARAM_FIELDS

    client.send_message("/livegen/params", [])
    table, packets = {}, 0
    while True:
        data = client.receive(2.0)
        assert len(data) <= 8192
        packets += 1
        for message in parse_packet(data):
            assert message.address == "/livegen/params" and len(message.args) == len(PARAM_FIELDS)
            row = dict(zip(PARAM_FIELDS, message.args))
            table[row["index"]] = row
        if len(table) == row["count"]:
            break
    specs = target.params.specs
    assert [row["name"] for _, row in sorted(table.items())] == list(specs)
    assert packets < len(specs)  # bundled, not a datagram each
    for row in table.values():
        spec = specs[row["name"]]
        assert (row["minimum"], row["maximum"], row["default"]) == pytest.approx((spec.minimum, spec.maximum, spec.default))
        assert (row["unit"], row["integer"], row["description"]) == (spec.unit, int(spec.integer), spec.description)
        assert row["step"] == (1.0 if spec.integer else 0.0)
    assert table[list(specs).index("voices")]["step"] == 1.0 and table[list(specs).index("gain")]["unit"] == "dB"
    small = OscServer(target, port=0, max_packet=256).start()
    try:  # a small packet limit: the same table in more, smaller bundles
        client._sock.sendto(encode_message("/livegen/params"), ("127.0.0.1", small.port))
        names = []
        while len(names) < len(specs):
            data = client.receive(2.0)
            assert 0 < len(data) <= 256
            names += [m.args[2] for m in parse_packet(data)]
        assert names == list(specs)
    finally:
        small.stop()


def test_long_replies_parse_and_oversized_ones_are_refused(target, server, client):
    from livegen.control.oscwire import MAX_ARGS, OscParseError

    many = encode_message("/x", tuple(range(300)))
    assert parse_packet(many)[0].args == tuple(range(300))
    with pytest.raises(OscParseError, match="arguments"):
        parse_packet(encode_message("/x", (True,) * (MAX_ARGS + 1)))
    small = OscServer(target, port=0, max_packet=128).start()
    try:
        client._sock.sendto(encode_message("/livegen/status"), ("127.0.0.1", small.port))
        (message,) = parse_packet(client.receive(2.0))
        assert message.address == "/livegen/error" and "packet limit" in message.args[0]
    finally:
        small.stop()


def test_docs_osc_md_is_the_generated_reference():
    """docs/osc.md is written from the address table (`python -m livegen.control.oscaddress`)."""
    from conftest import REPO
    from livegen.control.oscaddress import reference_markdown

    assert (REPO / "docs" / "osc.md").read_text() == reference_markdown(), \
        "docs/osc.md is stale: python -m livegen.control.oscaddress > docs/osc.md"


def test_every_table_address_reaches_its_handler(target):
    """Each address of the table, sent with no arguments, is understood (never 'unknown address')."""
    from livegen.control.oscaddress import ADDRESSES

    server = OscServer(target)
    errors = []
    server.wire.error = lambda sender, text: errors.append(text)
    for entry in ADDRESSES:
        address = entry.pattern.replace("<i>", "0").replace("<name>", "gain").replace("<id>", "1")
        server.handle_message(address, (), ("127.0.0.1", 1))
    assert len(server.dispatch.handlers) == len({entry.handler for entry in ADDRESSES})
    assert not [e for e in errors if "unknown address" in e], errors



def test_every_table_address_takes_the_arguments_the_table_gives(target):
    """Sent with the arguments docs/osc.md gives it (its required ones: numbers for `i`/`f`, a
    parameter name or path for `s`), no address answers that they are of the wrong type or count.
    (Some refuse for another reason here: this engine has no MIDI, input or other models.)"""
    from livegen.control.oscaddress import ADDRESSES

    server = OscServer(target)
    for entry in ADDRESSES:
        if not entry.handler:
            continue
        errors = []
        server.wire.error = lambda sender, text: errors.append(text)
        address = entry.pattern.replace("<i>", "0").replace("<name>", "gain").replace("<id>", "1")
        tags = entry.args.partition("[")[0].split()  # the required ones
        args = tuple({"f": 0.5, "i": 1, "s": "random" if entry.handler == "model" else "gain"}[tag] for tag in tags)
        server.handle_message(address, args, ("127.0.0.1", 1))
        assert not [e for e in errors if "expected" in e or "must be" in e], (entry.pattern, entry.args, errors)

def _partial(y, hz, cents=40.0, n=16384):
    """(frequency, dB) of the strongest bin within `cents` of `hz` in `y`'s mean power spectrum
    (frames with a dropout left out), finely resolved: 2.9 Hz bins."""
    from test_play import clean_frames

    frames = clean_frames(y, n=n)
    power = np.mean(np.abs(np.fft.rfft(frames * np.hanning(n), axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(n, 1 / 48000)
    near = (freqs > hz * 2 ** (-cents / 1200)) & (freqs < hz * 2 ** (cents / 1200))
    i = np.argmax(power[near])
    return freqs[near][i], 10 * np.log10(power[near][i] + 1e-20)


def _cents(found, hz):
    return abs(1200 * np.log2(found / hz))


def test_voice_bend_over_osc_moves_that_voice_alone_in_the_output(jack_server, live_play):
    """`livegen play` on JACK dummy, two voices from `/livegen/voice/<id>/note`; `/livegen/voice/1/bend 2`
    moves voice 1 from C4 to D4 in what JACK carries, and voice 2's A4 stays where it was."""
    from test_play import Capture

    capture = Capture(jack_server)
    try:
        play = live_play("--ahead-ms", "300", "--no-midi")
        play.send("/livegen/param/quality", 0)  # the cheapest phase setting: this machine is shared
        play.send("/livegen/param/drone", 0)
        play.send("/livegen/voice/1/note", 60, 100)
        play.send("/livegen/voice/2/note", 69, 100)
        status = play.wait_status(lambda s: s.get("voices") == 2, what="two voices sounding")
        assert len(status["voices_xy"].strip("[]").split(",")) == 4, status  # two points on the pad
        wait_for(capture.connect_engine, 10, "the engine's JACK output port")

        def window(seconds=2.0):
            play.played(0.5)  # what the engine rendered before now has reached JACK (300 ms ahead)
            start = capture.pos
            wait_for(lambda: capture.pos >= start + seconds * 48000, 30, f"{seconds:g} s captured")
            return capture.buffer[start:start + int(seconds * 48000)].copy()

        before = window()
        play.send("/livegen/voice/1/bend", 2)
        after = window()
        assert play.stop(30) == 0, play.log
    finally:
        capture.close()
    assert "Traceback" not in play.log
    c4, d4, a4 = 261.63, 293.66, 440.0
    (_, c4_before), (_, d4_before), (a4_found_before, _) = (_partial(before, hz) for hz in (c4, d4, a4))
    (_, c4_after), (d4_found, d4_after), (a4_found, a4_after) = (_partial(after, hz) for hz in (c4, d4, a4))
    assert c4_before > d4_before + 20, "before the bend voice 1 plays C4"
    assert _cents(d4_found, d4) < 25 and d4_after > d4_before + 20, "the bend moves voice 1 to D4"
    assert c4_after < c4_before - 20, "and C4 no longer sounds"
    # voice 2 sounds at A4 before and after (both notes fade a few dB over the seconds between)
    assert _cents(a4_found_before, a4) < 25 and _cents(a4_found, a4) < 25, "voice 2 stays at A4"
    assert a4_after > d4_before + 20, "voice 2 still sounds"


def errors_then_status(client):
    """The error texts answered to what was sent before, then the status (the server answers in order)."""
    client.send_message("/livegen/status", [])
    got = replies(client, until=lambda a: a == "/livegen/status")
    assert got and got[-1][0] == "/livegen/status", got
    status = dict(zip(got[-1][1][::2], got[-1][1][1::2]))
    return [args[0] for address, args in got if address == "/livegen/error"], status


# -- the panic, a voice cut, unknown addresses ------------------------------------------------
def test_panic_posts_the_stop_the_pedal_the_drone_and_a_cut_of_every_note(target, server, client):
    target.params.set("drone", 1)
    client.send_message("/livegen/subscribe", [])
    assert replies(client, until=lambda a: a == "/livegen/subscribed")
    client.send_message("/livegen/panic", [1])  # a touch surface's button press
    assert target.wait_for(lambda: len(target.applied) == 4)
    assert [(e.type, e.action, e.name, e.value, e.seconds, e.voice) for e in target.applied] == [
        ("preset", "loop", None, None, 0.0, None), ("param", None, "sustain", 0.0, None, None),
        ("param", None, "drone", 0.0, None, None), ("sound_off", "all", None, None, None, None)]
    assert {e.source for e in target.applied} == {"panic"}  # every subscriber hears it, its sender too
    assert target.params.get("drone") == 0
    heard = []
    while ("/livegen/param/drone", (0.0,)) not in heard:
        got = replies(client, timeout=5.0, until=lambda a: a == "/livegen/param/drone")
        assert got, f"the sender of the panic never heard drone 0: {heard}"
        heard += got


def test_a_voice_off_cuts_that_voice_and_bad_ones_are_refused(target, server, client):
    client.send_message("/livegen/voice/5/off", [])
    assert target.wait_for(lambda: len(target.applied) == 1)
    assert [(e.type, e.voice, e.action) for e in target.applied] == [("sound_off", 5, None)]
    client.send_message("/livegen/voice/128/off", [])
    client.send_message("/livegen/voice/5/off", [1, 2])
    client.send_message("/livegen/panic", ["now"])
    client.send_message("/livegen/voice/6/off", [0])  # a button's release: nothing
    client.send_message("/livegen/panic", [0.0])
    errors, _ = errors_then_status(client)
    assert errors == ["/livegen/voice/128/off: voice id '128' refused; ids are whole numbers 0..127",
                      "/livegen/voice/5/off: expected 1 number, got 2 arguments",
                      "/livegen/panic: arguments must be numbers (int or float), got str"]
    assert len(target.applied) == 1 and server.stats["posted"] == 1
    client.send_message("/livegen/voice/7/off", [1])  # its press: cut
    assert target.wait_for(lambda: len(target.applied) == 2)
    assert (target.applied[-1].type, target.applied[-1].voice) == ("sound_off", 7)


def test_unknown_addresses_are_answered_with_the_nearest_once_a_second_and_counted(target, server, client):
    clock = [100.0]
    server.dispatch.clock = lambda: clock[0]
    for _ in range(5):  # a flood of one typo is answered once
        client.send_message("/livegen/note_on", [60, 100])
    client.send_message("/livegen/parm/x", [0.5])
    client.send_message("/livegen/voice/3/bnd", [1.0])
    client.send_message("/livegen/nothing_like_it", [])
    client.send_message("/other/thing", [1.0])  # not ours: answered as before, not counted
    errors, status = errors_then_status(client)
    assert errors == [
        "unknown address '/livegen/note_on'; did you mean /livegen/note? docs/osc.md lists the addresses",
        "unknown address '/livegen/parm/x'; did you mean /livegen/param/x? docs/osc.md lists the addresses",
        ("unknown address '/livegen/voice/3/bnd'; did you mean /livegen/voice/3/bend? a voice takes "
         "/livegen/voice/<id>/note|bend|x|y|xy|pressure|off (docs/osc.md)"),
        "unknown address '/livegen/nothing_like_it'; docs/osc.md lists the addresses",
        "unknown address '/other/thing'; livegen listens under /livegen/"]
    assert status["osc_unknown"] == 8 and server.stats["unknown_unanswered"] == 4
    other = SimpleUDPClient("127.0.0.1", server.port)  # another client's same typo is its own
    other.send_message("/livegen/note_on", [60, 100])
    assert errors_then_status(other)[0] == [
        "unknown address '/livegen/note_on'; did you mean /livegen/note? docs/osc.md lists the addresses"]
    clock[0] += UNKNOWN_REPLY_SECONDS  # a second on: the same typo is answered again
    client.send_message("/livegen/note_on", [60, 100])
    errors, status = errors_then_status(client)
    assert errors == ["unknown address '/livegen/note_on'; did you mean /livegen/note? docs/osc.md lists the addresses"]
    assert status["osc_unknown"] == 10 and target.applied == []


@pytest.mark.parametrize("address, nearest", [
    ("/livegen/pnaic", "/livegen/panic"), ("/livegen/preset/recal", "/livegen/preset/recall"),
    ("/livegen/zz/1", "/livegen/z/1"), ("/livegen/voice/3/of", "/livegen/voice/3/off"),
    ("/livegen/statu", "/livegen/status"), ("/livegen/gain", None), ("/livegen/", None), ("/livegen/a/b/c/d", None)])
def test_the_nearest_address(address, nearest):
    assert nearest_address(address) == nearest


def test_the_port_a_server_bound_for_port_0_is_told_in_a_line_read_back():
    """`play --osc-port 0` logs `listening_line`; a program that started it finds the port with
    `listening_port` (the tests' `LivePlay` does)."""
    with OscServer(FakeTarget(), port=0) as server:
        log = f"livegen play: loading\nlivegen play: {listening_line(server.host, server.port)}\nlivegen play: playing\n"
        assert server.port > 0 and listening_port(log) == server.port
    assert listening_port("livegen play: OSC 9000 (OSC 127.0.0.1:9000)\n") is None
