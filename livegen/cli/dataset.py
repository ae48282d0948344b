"""`livegen dataset gm|gm-songs|info|features`: make training data, inspect a folder, cache its features."""

from __future__ import annotations

import argparse

from livegen.data.datasets import open_dataset
from livegen.data.files import check_output_folder
from livegen.data.gm import GM_GROUPS, parse_spec, program_split, render_gm_dataset
from livegen.data.songs import GENRES, render_songs
from livegen.errors import ranged, seed_type

JOBS = ranged(int, 1, 256, hint="worker processes")
"""What `--jobs` takes: each job is a process, so a mistyped 100000 would fill the machine with them."""
NOTE_SECONDS = 60.0
"""The longest --hold or --release: a note is rendered whole, in memory, before it is written."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "dataset",
        help="render a General MIDI note dataset, inspect a dataset folder, or cache its features",
        description="Datasets: render NSynth-format notes from a SoundFont (gm), summarise any "
                    "supported folder (info), or compute and cache its spectrogram features (features).",
    )
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION")
    sub.required = True

    gm = sub.add_parser(
        "gm", help="render NSynth-format notes from a General MIDI SoundFont with FluidSynth",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=_gm_epilog(),
        description="Each note is held --hold seconds, released, and rendered for --release more\n"
                    "seconds (NSynth: 3 + 1). SPEC: 'A-B', 'A-B:STEP', 'A,B,C' or a mix like '0-7,40'.\n"
                    "Whole programs go to train/valid/test (1 test + 1 valid program per GM group),\n"
                    "whichever programs are rendered. Same arguments -> identical files, any --jobs.",
    )
    gm.add_argument("--soundfont", required=True, help="a .sf2 file, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2")
    gm.add_argument("--out", required=True, help="output folder (examples.json + audio/)")
    gm.add_argument("--sample-rate", type=ranged(int, 8000, 192000), default=24000, help="Hz (default 24000, the model's)")
    gm.add_argument("--programs", default="0-127", metavar="SPEC", help="GM programs 0-127 (default 0-127)")
    gm.add_argument("--pitches", default="21-108", metavar="SPEC", help="MIDI notes (default 21-108)")
    gm.add_argument("--velocities", default="25,50,75,100,127", metavar="SPEC", help="1-127 (default 25,50,75,100,127)")
    gm.add_argument("--cents", default="0", metavar="SPEC",
                    help="detune every note by these cents with pitch bend, -100..100 (default 0; e.g. "
                         "'-50-50:25' for quarter-tone neighbours); note_str gets a '_+25c' suffix")
    gm.add_argument("--subsample", type=ranged(float, above=0, high=1), default=1.0, metavar="FRACTION",
                    help="keep this random share of the notes (default 1 = all); each program keeps "
                         "different pitches, so every pitch stays covered")
    gm.add_argument("--seed", type=seed_type(), default=0, help="seed of --subsample (default 0)")
    gm.add_argument("--banks", default="0", metavar="SPEC",
                    help="SoundFont banks 0-127 (default 0; FluidR3 has variation presets in 8 and 16; "
                         "absent bank:program pairs are skipped)")
    gm.add_argument("--hold", type=ranged(float, above=0, high=NOTE_SECONDS), default=3.0, help="seconds before note-off (default 3.0)")
    gm.add_argument("--release", type=ranged(float, 0, NOTE_SECONDS), default=1.0, help="seconds after note-off (default 1.0)")
    gm.add_argument("--gain", type=ranged(float, 0, 10, hint="FluidSynth's synth.gain"), default=0.7, help="FluidSynth master gain (default 0.7: the loudest FluidR3 notes peak near -4 dBFS)")
    gm.add_argument("--subtype", default="PCM_16", choices=("PCM_16", "PCM_24", "FLOAT"), help="WAV sample format")
    gm.add_argument("--jobs", type=JOBS, default=1, help="worker processes (default 1)")
    gm.add_argument("--no-progress", action="store_true", help="no progress bar")

    songs = sub.add_parser(
        "gm-songs", help="render generated multi-instrument pieces (chords, melody, bass, drums) into a GTZAN-like folder",
        description="Each piece follows a genre-like style (tempo, scale, progressions, instruments, comping, "
                    f"drums on GM channel 10); genres cycle through {', '.join(_genres())}. Output: "
                    "OUT/genres_original/<genre>/<genre>.<nnnnn>.wav + OUT/songs.json. Same arguments -> "
                    "identical files, any --jobs.",
    )
    songs.add_argument("--soundfont", required=True, help="a .sf2 file, e.g. /usr/share/sounds/sf2/FluidR3_GM.sf2")
    songs.add_argument("--out", required=True, help="output folder")
    songs.add_argument("--songs", type=ranged(int, 1, 100000), default=80, help="number of pieces (default 80)")
    songs.add_argument("--seconds", type=ranged(float, above=0), default=30.0, help="length of each piece (default 30, like GTZAN)")
    songs.add_argument("--seed", type=seed_type(), default=0, help="generation seed (default 0)")
    songs.add_argument("--sample-rate", type=ranged(int, 8000, 192000), default=24000, help="Hz (default 24000, the model's)")
    songs.add_argument("--gain", type=ranged(float, 0, 10, hint="FluidSynth's synth.gain"), default=0.5, help="FluidSynth master gain (default 0.5)")
    songs.add_argument("--jobs", type=JOBS, default=1, help="worker processes (default 1)")
    songs.add_argument("--no-progress", action="store_true", help="no progress bar")

    info = sub.add_parser("info", help="detect a dataset folder's layout and count its examples per split")
    info.add_argument("path", help="dataset folder (NSynth, livegen gm, MAESTRO, GTZAN, or any audio folder)")

    feats = sub.add_parser("features", help="compute (or re-use) the cached log-magnitude STFT features")
    feats.add_argument("path", help="dataset folder")
    feats.add_argument("--cache", required=True, help="cache folder")
    feats.add_argument("--sample-rate", type=ranged(int, 8000, 192000), default=24000)
    feats.add_argument("--n-fft", type=int, default=1024)
    feats.add_argument("--hop", type=int, default=128)
    feats.add_argument("--max-seconds", type=ranged(float, above=0), default=None, help="cut each example to this length")
    feats.add_argument("--jobs", type=JOBS, default=1, help="worker processes (default 1)")
    feats.add_argument("--no-progress", action="store_true")
    return parser


def _gm_epilog() -> str:
    lines = ["families (GM group -> family; programs 52-54 are 'vocal'):"]
    lines += [f"  {i * 8:3d}-{i * 8 + 7:3d} {group:21s} -> {family}" for i, (group, family) in enumerate(GM_GROUPS)]
    for split in ("test", "valid"):
        programs = ",".join(str(p) for p in range(128) if program_split(p) == split)
        lines.append(f"{split} programs: {programs}")
    return "\n".join(lines)


def _genres() -> tuple[str, ...]:
    return GENRES


def _spec(text: str, name: str, low: int, high: int) -> list[int]:
    return parse_spec(text, name=name, low=low, high=high)


def run(args) -> int:
    if args.dataset_command == "gm":
        return _run_gm(args)
    if args.dataset_command == "gm-songs":
        return _run_songs(args)
    if args.dataset_command == "info":
        return _run_info(args)
    return _run_features(args)


def _run_gm(args) -> int:
    check_output_folder(args.out, "--out")
    programs = _spec(args.programs, "programs", 0, 127)
    pitches = _spec(args.pitches, "pitches", 0, 127)
    velocities = _spec(args.velocities, "velocities", 1, 127)
    banks = _spec(args.banks, "banks", 0, 127)
    cents = _spec(args.cents, "cents", -100, 100)

    report = render_gm_dataset(
        args.out, soundfont=args.soundfont, sample_rate=args.sample_rate, programs=programs,
        pitches=pitches, velocities=velocities, hold_s=args.hold, release_s=args.release,
        banks=banks, cents=cents, subsample=args.subsample, seed=args.seed, gain=args.gain, subtype=args.subtype, jobs=args.jobs,
        progress=not args.no_progress,
    )
    print(
        f"{report['written']} notes written to {args.out} ({report['rendered']} rendered, "
        f"{len(report['silent'])} silent skipped, {len(report['clipped'])} clipped) in "
        f"{report['seconds']:.1f} s = {report['notes_per_second']} notes/s with {args.jobs} job(s); "
        f"splits {report['split_counts']}; report: {args.out}/render_report.json"
    )
    if report["missing_presets"] and report["written"]:
        print(f"{len(report['missing_presets'])} bank:program pairs have no preset and were skipped")
    return 0


def _run_songs(args) -> int:
    from collections import Counter

    check_output_folder(args.out, "--out")
    report = render_songs(args.out, soundfont=args.soundfont, songs=args.songs, seconds=args.seconds, seed=args.seed,
                          sample_rate=args.sample_rate, gain=args.gain, jobs=args.jobs, progress=not args.no_progress)
    genres = Counter(p["genre"] for p in report["pieces"])
    print(f"{args.songs} pieces x {args.seconds:g} s written to {args.out}/genres_original in "
          f"{report['render_seconds']:.1f} s with {args.jobs} job(s): "
          + ", ".join(f"{g} {n}" for g, n in genres.items()) + f"; metadata: {args.out}/songs.json")
    return 0


def _run_info(args) -> int:
    from collections import Counter

    ds = open_dataset(args.path)
    splits = Counter(ex.split for ex in ds)
    kinds = Counter(ex.kind for ex in ds)
    families = Counter(ex.family for ex in ds)
    print(f"{args.path}: layout {ds.layout}, {len(ds)} examples")
    print("  splits:   " + ", ".join(f"{k} {v}" for k, v in sorted(splits.items())))
    print("  kinds:    " + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items())))
    print("  families: " + ", ".join(f"{k} {v}" for k, v in sorted(families.items())))
    print(f"  instruments: {len({ex.instrument for ex in ds})}")
    return 0


def _run_features(args) -> int:
    from livegen.data.features import compute_features

    check_output_folder(args.cache, "--cache")
    ds = open_dataset(args.path)
    fs = compute_features(
        ds, sample_rate=args.sample_rate, n_fft=args.n_fft, hop=args.hop, cache_dir=args.cache,
        max_seconds=args.max_seconds, progress=not args.no_progress, jobs=args.jobs,
    )
    print(f"{len(fs)} examples, {fs.frames.shape[0]} frames x {fs.frames.shape[1]} bins in {fs.path}"
          f" ({'re-used' if fs.cache_hit else 'computed'}; {len(fs.report['skipped'])} skipped;"
          f" {fs.report['frames_per_second']} frames/s when computed)")
    return 0
