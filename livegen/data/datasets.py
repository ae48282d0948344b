"""Open audio datasets in the layouts users download them in, as one flat list of examples.

``open_dataset(path)`` detects, in this order:

- ``nsynth``: NSynth's ``examples.json`` + ``audio/`` (one split folder, or a root holding
  ``nsynth-train``/``nsynth-valid``/``nsynth-test``); ``livegen dataset gm`` writes the same
  layout (detected as ``gm``: its examples carry ``program`` and ``split``).
- ``maestro``: ``maestro-v*.csv`` or ``maestro-v*.json`` with ``split``, ``audio_filename``,
  ``midi_filename`` (WAV + MIDI pairs; ``validation`` becomes ``valid``).
- ``gtzan``: ``genres_original/<genre>/*.wav`` (also ``Data/genres_original`` or ``genres``);
  the genre is the label.
- ``folder``: any folder of audio files (wav, flac, ogg, mp3, aiff, au), searched recursively;
  the first sub-folder is the label.

Layouts without official splits (GTZAN, folders) get a fixed split from a hash of each file's
relative path (80 % train, 10 % valid, 10 % test), so it never changes between runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from livegen.errors import ParameterError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff", ".au")
SPLITS = ("train", "valid", "test")
# NSynth notes are held 3 s then released (its paper); livegen gm writes its own hold_s.
NSYNTH_HOLD_S = 3.0

LAYOUTS_HELP = (
    "expected one of: NSynth (examples.json + audio/, or nsynth-{train,valid,test}/ holding them), "
    "a `livegen dataset gm` output (same), MAESTRO (maestro-v*.csv or .json + WAV/MIDI files), "
    "GTZAN (genres_original/<genre>/*.wav), or a folder with audio files "
    f"({', '.join(e.lstrip('.') for e in AUDIO_EXTENSIONS)}) anywhere below it"
)


@dataclass(frozen=True)
class Example:
    """One training item: a single note (pitch known) or an excerpt of music.

    ``release_s`` is the time of the note-off from the start of the file (notes only);
    ``sample_rate`` is the file's native rate when the metadata says it (else None).
    """

    id: str
    audio_path: str
    kind: str  # "note" | "excerpt"
    instrument: str
    family: str
    split: str
    label: str
    pitch: int | None = None
    velocity: int | None = None
    release_s: float | None = None
    sample_rate: int | None = None
    midi_path: str | None = None
    cents: float = 0.0  # detune from ``pitch`` (livegen gm renders off-grid notes by pitch bend)

    @property
    def note_str(self) -> str:
        return self.id


class Dataset(list):
    """A list of ``Example`` with the folder it came from and the layout that was detected."""

    def __init__(self, examples, *, root: str | os.PathLike, layout: str):
        super().__init__(examples)
        self.root = str(root)
        self.layout = layout

    def split(self, name: str) -> "Dataset":
        if name not in SPLITS:
            raise ParameterError(f"split {name!r} is not one of {', '.join(SPLITS)}")
        return Dataset([ex for ex in self if ex.split == name], root=self.root, layout=self.layout)

    def __repr__(self) -> str:
        return f"Dataset({self.root!r}, layout={self.layout!r}, {len(self)} examples)"


def hash_split(key: str, *, valid: float = 0.1, test: float = 0.1) -> str:
    """A split fixed by a hash of ``key`` (a relative path), so it is the same on every run."""
    u = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") / 2**64
    if u < test:
        return "test"
    if u < test + valid:
        return "valid"
    return "train"


def open_dataset(path: str | os.PathLike) -> Dataset:
    """Detect the layout of ``path`` and list its examples (sorted, so the order is stable).

    Raises ParameterError naming the path and the expected layouts when nothing is found.
    """
    root = Path(path).expanduser()
    if not root.exists():
        raise ParameterError(f"dataset folder {str(root)!r} does not exist; {LAYOUTS_HELP}")
    if not root.is_dir():
        raise ParameterError(f"dataset path {str(root)!r} is not a folder; {LAYOUTS_HELP}")
    for detect in (_open_nsynth, _open_maestro, _open_gtzan, _open_folder):
        dataset = detect(root)
        if dataset is not None:
            if not len(dataset):
                raise ParameterError(f"dataset folder {str(root)!r} looks like {dataset.layout} but lists no examples; {LAYOUTS_HELP}")
            return dataset
    raise ParameterError(f"no dataset found in {str(root)!r}: no metadata and no audio files; {LAYOUTS_HELP}")


# --- NSynth / livegen gm -----------------------------------------------------------------

def _split_from_dirname(name: str) -> str | None:
    lowered = name.lower()
    for split, aliases in (("train", ("train",)), ("valid", ("valid", "validation", "val")), ("test", ("test",))):
        if any(lowered == a or lowered.endswith("-" + a) or lowered.endswith("_" + a) for a in aliases):
            return split
    return None


def _open_nsynth(root: Path) -> Dataset | None:
    if (root / "examples.json").is_file():
        split_dirs = [root]
    else:
        split_dirs = sorted(p.parent for p in root.glob("*/examples.json"))
        if not split_dirs:
            return None
    examples: list[Example] = []
    gm = False
    for split_dir in split_dirs:
        meta_path = split_dir / "examples.json"
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError) as exc:
            raise ParameterError(f"cannot read {str(meta_path)!r} ({exc}); it must be NSynth's examples.json") from None
        if not isinstance(meta, dict):
            raise ParameterError(f"{str(meta_path)!r} is not an NSynth examples.json (a dict keyed by note_str)")
        dir_split = _split_from_dirname(split_dir.name)
        for key in sorted(meta):
            row = meta[key]
            try:
                name = row.get("note_str", key)
                pitch = int(row["pitch"])
                velocity = int(row["velocity"])
            except (AttributeError, KeyError, TypeError, ValueError):
                raise ParameterError(f"{str(meta_path)!r}: entry {key!r} lacks NSynth's pitch/velocity fields") from None
            gm = gm or "program" in row
            hold = row.get("hold_s", NSYNTH_HOLD_S)
            rate = row.get("sample_rate")
            examples.append(Example(
                id=name,
                audio_path=str(split_dir / "audio" / f"{name}.wav"),
                kind="note",
                instrument=str(row.get("instrument_str", row.get("instrument", ""))),
                family=str(row.get("instrument_family_str", "")),
                split=row.get("split") or dir_split or "train",
                label=str(row.get("instrument_family_str", "")),
                pitch=pitch,
                velocity=velocity,
                release_s=float(hold) if hold is not None else None,
                sample_rate=int(rate) if rate else None,
                cents=float(row.get("detune_cents", 0.0)),
            ))
    return Dataset(examples, root=root, layout="gm" if gm else "nsynth")


# --- MAESTRO -------------------------------------------------------------------------------

def _maestro_rows(meta_path: Path) -> list[dict]:
    try:
        if meta_path.suffix == ".csv":
            with meta_path.open(newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))
        data = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError, csv.Error) as exc:
        raise ParameterError(f"cannot read MAESTRO metadata {str(meta_path)!r} ({exc})") from None
    if isinstance(data, list):  # v1/v2: a list of records
        return data
    if isinstance(data, dict) and "audio_filename" in data:  # v3: column-oriented
        keys = sorted(data["audio_filename"], key=lambda k: int(k) if str(k).isdigit() else k)
        return [{col: values.get(k) for col, values in data.items()} for k in keys]
    raise ParameterError(f"{str(meta_path)!r} is neither MAESTRO's record list nor its column table")


def _open_maestro(root: Path) -> Dataset | None:
    metas = sorted(root.glob("maestro-v*.csv")) or sorted(root.glob("maestro-v*.json"))
    if not metas:
        return None
    meta_path = metas[-1]  # newest version when several are present
    examples = []
    for i, row in enumerate(_maestro_rows(meta_path)):
        try:
            audio = row["audio_filename"]
            split = str(row["split"]).strip().lower()
        except KeyError as exc:
            raise ParameterError(f"{str(meta_path)!r}: column {exc} missing; MAESTRO metadata has split, audio_filename, midi_filename") from None
        split = {"validation": "valid", "val": "valid"}.get(split, split)
        midi = row.get("midi_filename")
        composer = str(row.get("canonical_composer") or "")
        examples.append(Example(
            id=Path(audio).stem,
            audio_path=str(root / audio),
            kind="excerpt",
            instrument="piano",
            family="keyboard",
            split=split if split in SPLITS else "train",
            label=composer,
            midi_path=str(root / midi) if midi else None,
        ))
    return Dataset(examples, root=root, layout="maestro")


# --- GTZAN ---------------------------------------------------------------------------------

def _audio_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())


def _open_gtzan(root: Path) -> Dataset | None:
    candidates = [root / "genres_original", root / "Data" / "genres_original", root / "genres"]
    if root.name in ("genres_original", "genres"):
        candidates.insert(0, root)
    for genres in candidates:
        if not genres.is_dir():
            continue
        examples = []
        for genre_dir in sorted(p for p in genres.iterdir() if p.is_dir()):
            for f in _audio_files(genre_dir):
                rel = f.relative_to(genres).as_posix()
                examples.append(Example(
                    id=rel.rsplit(".", 1)[0], audio_path=str(f), kind="excerpt",
                    instrument=genre_dir.name, family=genre_dir.name, split=hash_split(rel),
                    label=genre_dir.name,
                ))
        if examples:
            return Dataset(examples, root=root, layout="gtzan")
    return None


# --- any folder ----------------------------------------------------------------------------

def _open_folder(root: Path) -> Dataset | None:
    files = _audio_files(root)
    if not files:
        return None
    examples = []
    for f in files:
        rel = f.relative_to(root)
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        parent = rel.parent.as_posix() if len(rel.parts) > 1 else ""
        examples.append(Example(
            id=rel.with_suffix("").as_posix(), audio_path=str(f), kind="excerpt",
            instrument=parent, family=top, split=hash_split(rel.as_posix()), label=top,
        ))
    return Dataset(examples, root=root, layout="folder")
