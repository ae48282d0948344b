"""The example patches are well formed and speak the address space the server answers."""

from __future__ import annotations

import json
import re

from conftest import REPO
from livegen.control.fake import FakeTarget
from livegen.control.osc import OscServer
from livegen.control.oscwire import encode_message

EXAMPLES = REPO / "examples"


def _osc_addresses_answer(addresses):
    """Each address, sent with plausible arguments, is understood (no 'unknown address' error)."""
    target = FakeTarget()
    server = OscServer(target)
    errors = []
    server.wire.error = lambda sender, text: errors.append(text)
    samples = {"/livegen/xy": (0.5, 0.5), "/livegen/note": (60, 100), "/livegen/subscribe": (9001,)}
    try:
        for address in addresses:
            server.handle_datagram(encode_message(address, samples.get(address, ())), ("127.0.0.1", 1))
    finally:
        target.close()
    assert not [e for e in errors if "unknown address" in e], errors


def test_pd_patch_is_well_formed():
    lines = [line for line in (EXAMPLES / "livegen.pd").read_text().split(";\n") if line.strip()]
    assert lines[0].startswith("#N canvas")
    objects = [line for line in lines[1:] if re.match(r"#X (obj|msg|floatatom|symbolatom|text) ", line)]
    for line in lines[1:]:
        if line.startswith("#X connect"):
            src, _, dst, _ = map(int, line.split()[2:6])
            assert src < len(objects) and dst < len(objects), line
            assert not objects[dst].startswith("#X text") and not objects[src].startswith("#X text"), line
    text = "\n".join(objects)
    assert "oscformat livegen xy" in text and "oscformat livegen note" in text
    assert "netsend -u -b" in text and "netreceive -u -b 9001" in text and "oscformat livegen subscribe" in text
    _osc_addresses_answer(["/livegen/xy", "/livegen/note", "/livegen/subscribe", "/livegen/status"])


def test_max_patch_is_well_formed():
    patcher = json.loads((EXAMPLES / "livegen.maxpat").read_text())["patcher"]
    boxes = {b["box"]["id"]: b["box"] for b in patcher["boxes"]}
    for line in patcher["lines"]:
        source, outlet = line["patchline"]["source"]
        destination, inlet = line["patchline"]["destination"]
        assert outlet < boxes[source]["numoutlets"] and inlet < boxes[destination]["numinlets"], line
    texts = [b.get("text", "") for b in boxes.values()]
    assert "udpsend 127.0.0.1 9000" in texts and "udpreceive 9001" in texts
    addresses = sorted({t.split()[0] for t in texts if t.startswith("/livegen/")})
    assert addresses == ["/livegen/note", "/livegen/status", "/livegen/subscribe", "/livegen/xy"]
    _osc_addresses_answer(addresses)
