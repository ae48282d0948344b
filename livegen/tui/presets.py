"""Preset slots from the UI: the engine stores and recalls them (`/livegen/preset/store|recall`);
the UI remembers what it stored only to show a recall at once."""

from __future__ import annotations

from livegen.control.oscaddress import PREFIX

READ_BACK_SECONDS = 0.2


class Presets:
    def __init__(self, app):
        self.app = app
        self.stored: dict[int, dict[str, float]] = {}

    def store(self, slot: int) -> None:
        app = self.app
        self.stored[slot] = dict(app.values)
        app.send(f"{PREFIX}preset/store", slot)
        app.preset_bar.show(stored=self.stored.keys(), current=slot)
        app.show_message(f"stored preset {slot}", 2)

    def recall(self, slot: int) -> None:
        app = self.app
        app.morph.stop(tell_engine=False)  # the engine stops its own morph or loop on a recall
        app.send(f"{PREFIX}preset/recall", slot)
        for name, value in self.stored.get(slot, {}).items():
            app.show_value(name, value)
        # The engine does not echo a recall to the client that asked for it, and the slot may
        # hold what someone else stored: read the values back once the engine has applied it.
        app.set_timer(READ_BACK_SECONDS, app.read_back)
        app.preset_bar.show(current=slot)
