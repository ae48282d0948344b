"""The OSC address space as one table: it drives the server's dispatch, the UI's help screen and
`docs/osc.md` (`python -m livegen.control.oscaddress > docs/osc.md`; a test keeps them equal).

Plain data, no engine imports, so the UI (an OSC client) can read it too.
"""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/livegen/"


@dataclass(frozen=True)
class OscAddress:
    """One address: `pattern` (a `<i>`, `<name>` or `<id>` matches any rest, or one path element
    when the pattern goes on after it: `/livegen/voice/<id>/bend`), its arguments as
    OSC type tags (`[...]` optional), the name of its handler in `OscDispatcher` (empty for what
    the engine sends), a one-line `help` and optional `more` for the reference."""

    pattern: str
    args: str
    handler: str
    help: str
    more: str = ""
    query: bool = False
    """It only asks: not shown as the last address that acted (`osc_last`)."""

    @property
    def prefix(self) -> str | None:
        """`/livegen/z/` for `/livegen/z/<i>`; None for an exact address."""
        head, bracket, _ = self.pattern.partition("<")
        return head if bracket else None

    @property
    def suffix(self) -> str:
        """`/bend` for `/livegen/voice/<id>/bend`; "" when the pattern ends in its `<...>`."""
        return self.pattern.partition(">")[2]


SOUND_CHECK_SECONDS = 4.0
SOUND_CHECK_RANGE = (1.0, 30.0)
"""How long `/livegen/input/soundcheck` listens when not told, and the lengths it takes."""


ADDRESSES: tuple[OscAddress, ...] = (
    OscAddress("/livegen/xy", "f f", "xy", "x, y on the latent plane (the XY pad), 0..1 each"),
    OscAddress("/livegen/z/<i>", "f", "latent", "latent offset `z<i>` (i = 0 .. latent size - 1), -4..4"),
    OscAddress("/livegen/param/<name>", "f", "param", "any parameter by name (`/livegen/params` lists them)"),
    OscAddress("/livegen/input/<name>", "f", "input",
               "a setting of the audio input's voice: `/livegen/input/gain` sets `input_gain`",
               "Every `input_*` parameter (with `--input-device`; `/livegen/params` lists them with "
               "their ranges): the same as `/livegen/param/input_<name>`. MIDI learn takes them by "
               "their parameter names (`/livegen/learn input_gain`)."),
    OscAddress("/livegen/input/soundcheck", "[f]", "soundcheck",
               "listen to the audio input for f seconds (1..30, default 4), then set `input_gain` for it",
               "A sound check: play as loud as you will on stage while it listens. It sets `input_gain` so "
               "that loud playing (the 95th percentile of the input's level over what was played) sits at "
               "-20 dBFS, where the input's voice plays the model at a velocity-100 note's level and timbre, "
               "whatever the microphone and the interface's gain. The asker is answered "
               "`/livegen/input/soundcheck s` (the gain set, and what was heard), every subscriber hears "
               "the new `input_gain`, and the take's log holds it as a parameter change. Too little played, or no "
               "audio input: `/livegen/error`, and the gain stays. The UI sends it on F6; `livegen render "
               "--input FILE --soundcheck` does the same over the file."),
    OscAddress("/livegen/note", "i i", "note", "pitch 0..127, velocity 0..127 (0 = note off)"),
    OscAddress("/livegen/voice/<id>/note", "i i", "voice_note",
               "voice id 0..127 plays pitch 0..127 at velocity 0..127 (0 = off) with its own controls",
               "Per-touch control (docs/mpe.md): a client picks any id, one per finger or touch. The "
               "pitch may be an int or a float; the note plays with the id's current `bend`, `x`, `y` "
               "and `pressure`, and velocity 0 releases that id's note of that pitch, wherever it was "
               "bent to. An MPE keyboard's member channel c is voice c, so pick other ids beside one."),
    OscAddress("/livegen/voice/<id>/bend", "f", "voice",
               "the voice's pitch bend in semitones, -96..96, on top of the global `bend`"),
    OscAddress("/livegen/voice/<id>/x", "f", "voice",
               "the voice's offset from the pad point along x, in pad widths, -1..1"),
    OscAddress("/livegen/voice/<id>/y", "f", "voice",
               "the voice's offset from the pad point along y, in pad widths, -1..1"),
    OscAddress("/livegen/voice/<id>/xy", "f f", "voice_xy", "both offsets at once, -1..1 each"),
    OscAddress("/livegen/voice/<id>/pressure", "f", "voice",
               "the voice's pressure 0..1: its velocity moves towards full (it plays as a harder-struck note)",
               "A voice's controls hold until changed, before and after its notes: send them before "
               "the note that uses them (as an MPE keyboard does) or while it sounds. Out of range "
               "values are clamped and reported; an id outside 0..127 is refused."),
    OscAddress("/livegen/voice/<id>/off", "[i]", "voice_off",
               "cut the voice's notes at once, held, pedal-held or releasing (a touch surface's \"cut this voice\")",
               "A `sound_off` of that id (MIDI's All Sound Off, for one voice): each note fades out within a "
               "few milliseconds, wherever it was bent to; its controls stay as they were. Sent with no "
               "argument, or as a touch surface's button sends it: its press (1) cuts, its release (0) "
               "does nothing; the same for `/livegen/panic`."),
    OscAddress("/livegen/panic", "[i]", "panic",
               "silence now: every note cut, the pedal up, a morph or loop stopped, the drone off",
               "A performer's panic button: every note, with or without a voice id, held, pedal-held or in "
               "its release tail, fades out within a few milliseconds; `sustain` goes to 0, a running "
               "preset morph or loop stops where it is, and `drone` goes to 0 (the drone is silenced "
               "too: a panic means silence; every subscriber, its sender too, receives `sustain` and "
               "`drone` 0, and `drone` 1 brings it back). The UI sends it on F5. Logged as the events it is made of (a `preset` `loop` of 0 s, `sustain` 0, `drone` "
               "0 (and `input_level` 0), a `sound_off` of every note), so a take re-renders it exactly. Other parameters stay where "
               "they are; a recording goes on. A continuation model's stream is its drone: it falls "
               "silent too. With `--input-device`, `input_level` goes to 0 as well: the input's voice "
               "falls silent (a feedback loop through a microphone stops) until it is raised again."),
    OscAddress("/livegen/record", "i", "record", "1 starts, 0 stops recording"),
    OscAddress("/livegen/preset/store", "i", "preset_store", "store every parameter in slot 0..127"),
    OscAddress("/livegen/preset/recall", "i", "preset_recall", "recall slot 0..127 (stops a morph or loop)"),
    OscAddress("/livegen/preset/morph", "i f", "preset_morph",
               "glide every stored parameter to slot 0..127 over f seconds (>= 0)",
               "On the sample clock, raised cosine (integer parameters step), so the session log "
               "re-renders it exactly; an empty slot changes nothing. A parameter moved meanwhile "
               "(`/livegen/param`, MIDI, the UI) leaves the morph and stays where it was put; the rest "
               "keep gliding, and subscribers receive them."),
    OscAddress("/livegen/preset/loop", "f [i ...]", "preset_loop",
               "glide slot to slot, f seconds a leg, round and round; 0 seconds stops",
               "The slots given (at least 2, 0..127) or every stored slot in order: from the current "
               "values to the first, slot to slot and back to the first (autonomous motion for "
               "installations). Same glide and take-over rule as `morph`; a recall or another "
               "morph or loop stops it too."),
    OscAddress("/livegen/learn", "s", "learn", "arm MIDI learn for a parameter; replies `/livegen/learned s s`",
               "The next moved CC/NRPN control binds to it (parameter, control); `\"\"` cancels; "
               "`record` binds a button that starts and stops recording."),
    OscAddress("/livegen/unlearn", "s", "unlearn", "remove a parameter's MIDI bindings; replies `/livegen/bindings`",
               "The map file is saved."),
    OscAddress("/livegen/model", "s", "model",
               "load another model directory (or `random`) while playing; replies `/livegen/model s`",
               "A VAE (`models/default`) or a continuation model (`models/continuation`): the current "
               "sound fades out and the new model's fades in with no gap; parameters, presets, held "
               "notes and the pedal carry over; refused while recording. The reply (its path; subscribers hear it "
               "too) comes once it plays, or `/livegen/error s`."),
    OscAddress("/livegen/seed", "s", "seed",
               "continuation models: play an audio file, the model takes over where it ends; "
               "replies `/livegen/seed s`",
               "An absolute path, or relative to the engine's directory; up to 30 s of it play from the "
               "next block, in the file's style at the pad's centre (`return` then goes back to where "
               "this seed ended). It is read off the audio path; the reply (its absolute path) comes "
               "once it is queued, or `/livegen/error s` naming the file and what to do."),
    OscAddress("/livegen/bindings", "", "bindings", "replies `/livegen/bindings s s ...` (parameter, control pairs)",
               "Such as `z0`, `CC 70 any ch`; none with MIDI off.", query=True),
    OscAddress("/livegen/get/<name>", "", "get", "replies `/livegen/param/<name> f`", query=True),
    OscAddress("/livegen/get", "s", "get", "the same, the name as an argument", query=True),
    OscAddress("/livegen/params", "", "params",
               "replies the parameter table: one `/livegen/params i i s f f f s i f s` per parameter",
               "Index, count, name, minimum, maximum, default, unit, integer (1 or 0), step (1 for "
               "integer parameters, 0 for continuous ones) and description, in the engine's order; "
               "packed into bundles of at most 8192 bytes. The table is complete once `count` "
               "distinct indices arrived. A client needs nothing else to draw a slider per "
               "parameter; `/livegen/subscribe` then gives their values. Ask again after "
               "`/livegen/model`: another model has other latent offsets and parameters.",
               query=True),
    OscAddress("/livegen/status", "", "status", "replies `/livegen/status s ? s ? ...` (name/value pairs)",
               "The engine's (`xruns samplerate blocksize voices recording load peak ...`), the OSC "
               "port, subscriber count, the last OSC address that acted (`osc_last`; queries are left "
               "out), the unknown addresses received under `/livegen/` (`osc_unknown`), where apps find it (`osc_query`: the OSCQuery URL, `osc_name`: the name advertised "
               "over mDNS, \"\" until advertised or when not; the UI's status line shows both), MIDI connections and last message (`midi_*`), the recording (`record_*`) and, with "
               "`--input-device`, the audio input (`input_*`: level, pitch heard, clip counts, its "
               "point on the pad, its JACK port; docs/live-input.md), and the pad points of the voices "
               "that sound with an id (`voices_xy`, as text: `[x0, y0, x1, y1, ...]`; docs/mpe.md).",
               query=True),
    OscAddress("/livegen/subscribe", "[i]", "subscribe",
               "feedback to the sender (or port i on its host); replies `/livegen/subscribed i f`",
               "Every applied change at up to 30 Hz, coalesced, starting with every current value, and "
               "never echoed to the client that sent it (see the table below). The reply gives the "
               "port and the lease in seconds: a subscription lasts 60 s; send it again (every 20 s, "
               "say) or any message from the subscribing socket to renew. At most 16 subscribers; on "
               "Linux one whose port answers ICMP \"port unreachable\" is dropped at once.",
               query=True),
    OscAddress("/livegen/unsubscribe", "[i]", "unsubscribe", "stop feedback", query=True),
)
"""What the engine takes, in the order the reference lists them."""

PARAM_FIELDS = ("index", "count", "name", "minimum", "maximum", "default", "unit", "integer", "step", "description")
"""The arguments of each `/livegen/params` reply message, in order."""


def param_rows(specs: dict) -> list[tuple]:
    """The `/livegen/params` reply messages' arguments for a parameter registry's `specs`."""
    return [(index, len(specs), name, float(spec.minimum), float(spec.maximum), float(spec.default), spec.unit,
             int(spec.integer), 1.0 if spec.integer else 0.0, spec.description)
            for index, (name, spec) in enumerate(specs.items())]

SENT: tuple[OscAddress, ...] = (
    OscAddress("/livegen/param/<name>", "f", "", "a parameter someone else changed (also `/livegen/xy f f`, "
                                                 "`/livegen/z/<i> f`); the reply to `/livegen/get`"),
    OscAddress("/livegen/note", "i i", "", "a note someone else played (velocity 0: off)"),
    OscAddress("/livegen/meter", "f f", "", "output peak and RMS, dBFS, of the last ~33 ms"),
    OscAddress("/livegen/spectrum", "f*64", "", "output level in 64 log-spaced bands, dB, 30 Hz to Nyquist",
               "Hann-windowed rfft of the last 1024 output samples; 0 dB is a full-scale sine."),
    OscAddress("/livegen/meter/<key>", "f", "", "load, xruns, voices, recording, peak, rms as they change"),
    OscAddress("/livegen/voices_xy", "[f f ...]", "",
               "the pad points (0..1, x y pairs) of the sounding voices with an id, as they move",
               "Each voice's point is the performer's point plus its `x`/`y` offsets, clipped to the "
               "pad (status `voices_xy`); no arguments once none sounds."),
    OscAddress("/livegen/model", "s", "", "a model another client loaded now plays"),
    OscAddress("/livegen/unsubscribed", "i", "", "the lease ran out: subscribe again"),
    OscAddress("/livegen/error", "s", "", "what went wrong: a refused message (to its sender), a failed recording"),
)
"""What the engine sends to subscribers (besides the replies named above), at most 30 times a second."""

INTRODUCTION = """\
livegen listens for OSC over UDP (`--osc-port`, default 9000; `--osc-host`, default 127.0.0.1;
`--osc-allow CIDR` to accept only some senders). Everything lives under `/livegen/`. Ints and
floats are both accepted (`i`, `h`, `f`, `d`; `T`/`F` count as 1/0). Values outside a
parameter's range are clamped and the sender is told so with `/livegen/error s`; NaN/Inf, wrong
types, unknown addresses, malformed or oversized packets (> 8192 bytes) change nothing and are
answered with `/livegen/error s` naming what was wrong (at most 50 errors a second per sender).
An unknown address under `/livegen/` (`/livegen/note_on`) is answered with the nearest known
one (`did you mean /livegen/note?`) once a second per sender and address, however often it
comes, and counted (`osc_unknown` in `/livegen/status`). Replies go to the sender's address and
port.

Bundles are accepted: a bundle whose time tag lies ahead (at most 60 s) is held by a scheduler
thread and posted at its time; the engine applies it at its next hop. Immediate or past time tags
act on arrival. A malformed bundle is refused whole.

Quick check with liblo's tools: `oscsend localhost 9000 /livegen/xy ff 0.2 0.8`, and
`oscdump 9001` after `oscsend localhost 9000 /livegen/subscribe i 9001` (for 60 s: send it again
to renew).
"""

DISCOVERY = """\
## Discovery (OSCQuery)

While `livegen play` listens for OSC on UDP port P of host H, it also answers
[OSCQuery](https://github.com/Vidvox/OSCQueryProposal) over HTTP on TCP at the same H:P (the start
line names it, e.g. `OSCQuery http://127.0.0.1:9000/`; `/livegen/status` gives it as `osc_query`).
Apps that find OSC devices by themselves read it and list every address of the table above with
its type tags (`TYPE`), argument ranges (`RANGE`), current values (`VALUE`), `ACCESS` (3 for
parameters, 2 for what only acts, 0 for queries), `DESCRIPTION`, `UNIT` (a parameter's unit) and
`CLIPMODE` (`both` where out-of-range values are clamped): TouchOSC, TouchDesigner, Max (its
OSCQuery package), Chataigne, Vezér, ossia score. Three addresses are left out of the tree, and
work over OSC as the table says: `/livegen/z/<i>` and `/livegen/input/<name>`, other names of the
parameters `z<i>` and `input_<name>`, which the tree lists once, under `/livegen/param/` (listed
twice, each of them showed as two controls in the apps' browsers), and `/livegen/get/<name>`. A
parameter's value is its node's `VALUE`, read over HTTP; a query node per parameter, with no type
and no value, only listed every parameter a second time in the apps' browsers (Chataigne makes a
control of each node by its `TYPE` and names it by its `DESCRIPTION`: these had no type and all
one description) and made `/livegen/get` a container rather than the method that takes a name.

- `GET /` is the whole namespace, `GET /livegen/param` a part of it, `GET /livegen/param/gain?VALUE`
  one attribute (`{"VALUE": [-6.0]}`), `GET /?HOST_INFO` names `livegen`, `OSC_PORT` (P),
  `OSC_TRANSPORT` `UDP`, `OSC_IP` and the attributes supported (`EXTENSIONS`). There is no
  WebSocket, so no `LISTEN`: subscribe over OSC (`/livegen/subscribe`) for values as they change.
- Every parameter is listed once, as `/livegen/param/<name>` (integer ones have type `i`): the
  latent offsets of the model playing (`/livegen/param/z0` ..), and the audio input's settings
  with `--input-device` (`/livegen/param/input_gain` ..). `/livegen/xy` is listed beside
  `/livegen/param/x` and `/livegen/param/y`: it moves the pad's two in one message (an XY
  control's). Voices: `/livegen/voice/0/...` to
  `/livegen/voice/16/...` are listed (an MPE zone's member channels 1-16 are voices 1-16); every
  id 0..127 works.
  `/livegen/record` and `/livegen/model` have values too (from the status).
- The namespace is built on each request from this table and the engine's parameters: after
  `/livegen/model` ask again. `--osc-allow` keeps other addresses out of HTTP too.
- Errors: 404 with a JSON `ERROR` for a path that is not there, 400 for an attribute not
  supported, 204 for the `VALUE` of something that only acts (a note, a preset slot).
- mDNS: bound to an address other machines reach (`--osc-host 0.0.0.0`, or one of this
  machine's addresses), livegen advertises `_oscjson._tcp` and `_osc._udp` at the OSC port,
  both under one instance name: `livegen`, or `livegen-2`, `livegen-3` ... when another livegen
  on the network holds it. The name is the one registered, read back: the start log line
  (`advertised as 'livegen-2'`), `/livegen/status` (`osc_name`) and the UI's status line give it.
  Two started at the same moment both probe the name before either holds it; each then asks for
  its name again, and of two holders the one with the greater host name and port moves on to the
  next number (about a second more), so both end with names of their own. On
  127.0.0.1 (the default) nothing outside this machine can reach it, so nothing is advertised
  and the log says so. An advertisement that fails (a network without multicast) is one log
  line: OSC and OSCQuery go on, enter the address and port in the app.
- If another program holds TCP port P, OSCQuery is off (one log line) and OSC plays on.
  `--no-discovery` turns OSCQuery and mDNS off.
- What it costs OSC: [benchmarks/control-oscquery.md](benchmarks/control-oscquery.md).

Try it: `curl http://127.0.0.1:9000/livegen/param/gain?VALUE`, `curl http://127.0.0.1:9000/?HOST_INFO`.
"""

NOTES: tuple[str, ...] = (DISCOVERY,)
"""Further sections of the reference (markdown), after the tables."""


def find(address: str) -> tuple[OscAddress | None, str]:
    """The table entry for an incoming address and the rest a `<...>` pattern matched ("" if none)."""
    entry = _EXACT.get(address)
    if entry is not None:
        return entry, ""
    for prefix, suffix, entry in _PREFIXED:
        rest = address[len(prefix):len(address) - len(suffix)]
        if address.startswith(prefix) and address.endswith(suffix) and rest and not (suffix and "/" in rest):
            return entry, rest
    return None, ""


_EXACT = {entry.pattern: entry for entry in ADDRESSES if entry.prefix is None}
_PREFIXED = [(entry.prefix, entry.suffix, entry) for entry in ADDRESSES if entry.prefix is not None]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def _table(entries, heading: str) -> list[str]:
    lines = [f"| address | args | {heading} |", "|---|---|---|"]
    for entry in entries:
        text = entry.help + (f". {entry.more}" if entry.more else "")
        args = f"`{entry.args}`" if entry.args else ""
        lines.append(f"| `{entry.pattern}` | {_cell(args)} | {_cell(text)} |")
    return lines


def reference_markdown() -> str:
    """`docs/osc.md`."""
    lines = ["# OSC reference", "",
             "<!-- Generated from livegen/control/oscaddress.py: python -m livegen.control.oscaddress > docs/osc.md -->",
             "", INTRODUCTION.rstrip(), "", "## Messages livegen takes", ""]
    lines += _table(ADDRESSES, "does")
    lines += ["", "## What subscribers receive", "",
              "At most 30 times a second, coalesced (besides the replies named above):", ""]
    lines += _table(SENT, "means")
    for note in NOTES:
        lines += ["", note.rstrip()]
    return "\n".join(lines) + "\n"


def help_rows() -> list[tuple[str, str]]:
    """(address and arguments, one-line help) for the UI's help screen; `→` marks what it receives."""
    rows = [(f"{entry.pattern} {entry.args}".rstrip(), entry.help) for entry in ADDRESSES]
    rows += [(f"→ {entry.pattern} {entry.args}".rstrip(), entry.help) for entry in SENT]
    return rows


if __name__ == "__main__":
    print(reference_markdown(), end="")
