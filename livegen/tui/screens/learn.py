"""MIDI learn: pick a parameter, move a control, see the binding; list and delete bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, OptionList
from textual.widgets.option_list import Option


class LearnScreen(ModalScreen):
    """Enter on a parameter sends `/livegen/learn s`; the engine answers `/livegen/learned s s`
    once a control moved. Del on a binding sends `/livegen/unlearn s`."""

    BINDINGS = [
        Binding("escape,f2", "app.pop_screen", "close"),
        Binding("delete,backspace", "unlearn", "delete binding"),
    ]

    def __init__(self, params: list[str], bindings: dict[str, str]):
        super().__init__()
        self.params = params
        self.bindings = dict(bindings)
        self.armed: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="learn-box"):
            yield Label("MIDI learn: Enter arms a parameter, then move a control. Del deletes. Esc closes.")
            with Horizontal(id="learn-lists"):
                yield OptionList(*[Option(name, id=name) for name in self.params], id="learn-params")
                yield OptionList(id="learn-bindings")
            yield Label("", id="learn-state")

    def on_mount(self) -> None:
        self._fill_bindings()
        self.query_one("#learn-params", OptionList).focus()
        self.app.request_bindings()

    def _fill_bindings(self) -> None:
        listing = self.query_one("#learn-bindings", OptionList)
        listing.clear_options()
        if not self.bindings:
            listing.add_option(Option("(no bindings)", id="-", disabled=True))
        for param, control in sorted(self.bindings.items()):
            listing.add_option(Option(f"{param:<12} ← {control}", id=param))

    def set_bindings(self, bindings: dict[str, str]) -> None:
        self.bindings = dict(bindings)
        self._fill_bindings()

    def learned(self, param: str, control: str) -> None:
        self.bindings[param] = control
        self._fill_bindings()
        if param == self.armed:
            self.armed = None
        self.query_one("#learn-state", Label).update(f"bound {param} ← {control}")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_list.id != "learn-params" or event.option.id is None:
            return
        self.armed = event.option.id
        self.app.link.send("/livegen/learn", self.armed)
        self.query_one("#learn-state", Label).update(f"learning {self.armed}: move a MIDI control…")

    def action_unlearn(self) -> None:
        listing = self.query_one("#learn-bindings", OptionList)
        if not listing.has_focus or listing.highlighted is None:
            return
        option = listing.get_option_at_index(listing.highlighted)
        if option.id in (None, "-"):
            return
        self.app.link.send("/livegen/unlearn", option.id)
        self.bindings.pop(option.id, None)
        self._fill_bindings()
        self.query_one("#learn-state", Label).update(f"removed binding of {option.id}")
