"""Preset morphs and loops from the UI, played by the engine (`/livegen/preset/morph`, `/loop`).

The engine glides the parameters on its sample clock (so the session log holds the glide and a
render plays it again) and sends them to subscribers, which moves the UI's widgets. The UI's own
clock only draws the progress bar and which slot a loop has reached.
"""

from __future__ import annotations

import time

from livegen.control.oscaddress import PREFIX

TICK = 1 / 30


class Morph:
    def __init__(self, app):
        self.app = app
        self.legs: list[int] = []
        """Slots still to reach, in order; a loop goes round them."""
        self.looping = False
        self.seconds = 0.0
        self._began = 0.0
        self._timer = None

    @property
    def running(self) -> bool:
        return self._timer is not None

    def to(self, target: int, seconds: float) -> None:
        """Glide every parameter to preset `target` over `seconds`."""
        if target not in self.app.presets.stored:
            self.app.show_message(f"preset {target} is empty: store it first (shift+{target})")
            return
        self.stop(tell_engine=False)  # another morph stops a running one in the engine too
        self.app.send(f"{PREFIX}preset/morph", target, float(seconds))
        self._run([target], seconds, looping=False)

    def toggle_loop(self, seconds: float) -> None:
        """Glide through the stored presets in slot order, from the one after the current,
        round and round, `seconds` a leg, until `L` again, a recall or another morph."""
        if self.looping:
            self.stop()
            return
        slots = sorted(self.app.presets.stored)
        if len(slots) < 2:
            self.app.show_message("store at least 2 presets to loop through them (shift+1-8)")
            return
        current = self.app.preset_bar.current
        later = [slot for slot in slots if current is None or slot > current]
        order = later + [slot for slot in slots if slot not in later]
        self.stop(tell_engine=False)
        self.app.send(f"{PREFIX}preset/loop", float(seconds), *order)
        self._run(order, seconds, looping=True)

    def stop(self, *, tell_engine: bool = True) -> None:
        """Stop showing a morph; with `tell_engine`, stop the engine's too (a loop of 0 seconds)."""
        bar = self.app.preset_bar
        if tell_engine and self.running:
            self.app.send(f"{PREFIX}preset/loop", 0.0)
        if self.looping:
            self.looping = False
            bar.looping = False
            bar.refresh()
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
            bar.show()

    def _run(self, legs: list[int], seconds: float, *, looping: bool) -> None:
        self.legs, self.seconds, self.looping = list(legs), max(float(seconds), 0.01), looping
        self.app.preset_bar.looping = looping
        self._began = time.monotonic()
        self._timer = self.app.set_interval(TICK, self._tick)
        self._tick()

    def _tick(self) -> None:
        bar = self.app.preset_bar
        target = self.legs[0]
        fraction = min((time.monotonic() - self._began) / self.seconds, 1.0)
        if fraction < 1.0:
            bar.show(progress=fraction, target=target)
            return
        bar.show(current=target)
        if not self.looping:
            self.stop(tell_engine=False)
            return
        self.legs = self.legs[1:] + [target]
        self._began += self.seconds
