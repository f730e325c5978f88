"""The paste's halo and seam, before and after issue 24's fix, and what the paste costs per face.

Every face of the inputs (the astronaut; frames spread over each clip; raw photos chosen by the
names of a folder of crops, such as testA) gets the model's cartoon (the shipped default unless
``--weights``), pasted twice: by :func:`p2c.stream.compositing.paste_cartoons` ("after") and by the
paste as it was before the fix ("before", :func:`legacy_paste_cartoons`, kept here to compare).
:func:`p2c.stream.paste_quality.measure_paste` measures both, and both pastes are timed,
interleaved, ``--repeat`` times per face (wall and process CPU time, with OpenCV's threads as a
video run sets them).
Writes JSON, Markdown and a plot: per face, and the mean per input set.

    python benchmarks/paste_quality.py --clips ../shared/media \\
        --photos ../shared/data/photo2cartoon/trainA --stems-from /tmp/p2c-data/testA --limit 12 \\
        --out docs/benchmarks

Video frames are aligned as stills are (``FaceAligner.align``): the video pipeline smooths its
masks and cartoons over time, which this does not.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from reporting import Report, benchmark_command, pyplot, save_figure, write_report

NAME = "paste_quality"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="generator (default: the shipped model)")
    parser.add_argument("--clips", type=Path, default=None, help="a folder of .mp4 clips")
    parser.add_argument("--frames-per-clip", type=int, default=4, help="frames spread over each clip")
    parser.add_argument("--photos", type=Path, default=None, help="a folder of raw photos")
    parser.add_argument("--stems-from", type=Path, default=None, help="only photos named like these files")
    parser.add_argument("--limit", type=int, default=12, help="at most this many photos")
    parser.add_argument("--repeat", type=int, default=5, help="timings per face and paste")
    parser.add_argument(
        "--tiny", action="store_true", help="the astronaut only, timed once (CI's smoke test)"
    )
    parser.add_argument("--out", type=Path, default=Path("out/paste_quality"))
    return parser


# ---------------------------------------------------------------------------------------------
# The paste before issue 24: the cartoon and its feathered head mask, blended as they are.


def _legacy_paste_one(
    frame: np.ndarray, transform: np.ndarray, cartoon: np.ndarray, mask: np.ndarray
) -> None:
    from p2c.stream.compositing import feather_mask, footprint_box, resize_transform

    size = cartoon.shape[0]
    alpha = feather_mask(mask)
    if alpha.shape != (size, size):
        shrink = cv2.INTER_AREA if size < alpha.shape[0] else cv2.INTER_LINEAR
        alpha = cv2.resize(alpha, (size, size), interpolation=shrink)
    matrix = resize_transform(transform, mask.shape[0], size)
    box = footprint_box(matrix, size, frame.shape)
    if box is None:
        return
    x0, y0, x1, y1 = box
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    if scale > 2.0:
        target = max(2, int(np.ceil(size / scale * 1.5)))
        cartoon = cv2.resize(cartoon, (target, target), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(alpha, (target, target), interpolation=cv2.INTER_AREA)
        matrix = resize_transform(matrix, size, target)
    shifted = matrix.copy()
    shifted[:, 2] += matrix[:, :2] @ np.array([x0, y0], dtype=np.float64)
    rgba = np.dstack([cartoon, np.rint(alpha * 255.0).astype(np.uint8)])
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    warped_rgba = cv2.warpAffine(
        rgba, shifted, (x1 - x0, y1 - y0), flags=flags, borderMode=cv2.BORDER_CONSTANT
    )
    warped = cv2.cvtColor(warped_rgba, cv2.COLOR_RGBA2RGB)
    weight = cv2.extractChannel(warped_rgba, 3).astype(np.float32) / 255.0
    region = frame[y0:y1, x0:x1]
    region[...] = cv2.blendLinear(warped, region, weight, 1.0 - weight)


def legacy_paste_cartoons(image: np.ndarray, faces: Sequence, cartoons: Sequence[np.ndarray]) -> np.ndarray:
    """``paste_cartoons`` as it was before issue 24 (one face or several, largest on top)."""
    frame = np.array(image, dtype=np.uint8, copy=True)
    order = sorted(
        range(len(faces)), key=lambda i: abs(np.linalg.det(faces[i].transform[:, :2])), reverse=True
    )
    for index in order:
        _legacy_paste_one(
            frame, faces[index].transform, np.asarray(cartoons[index], np.uint8), faces[index].mask
        )
    return frame


# ---------------------------------------------------------------------------------------------
# Inputs


def _clip_frames(clip: Path, count: int) -> Iterator[tuple[str, np.ndarray]]:
    capture = cv2.VideoCapture(str(clip))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    wanted = {int(i) for i in np.linspace(0, total - 1, count + 2)[1:-1]}
    index = 0
    while wanted:
        ok, frame = capture.read()
        if not ok:
            break
        if index in wanted:
            wanted.discard(index)
            yield f"{clip.stem}#{index}", cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        index += 1
    capture.release()


def _photos(args: argparse.Namespace) -> Iterator[tuple[str, np.ndarray]]:
    from p2c.stream.image_io import read_image

    paths = sorted(args.photos.iterdir())
    if args.stems_from is not None:
        stems = {path.stem for path in args.stems_from.iterdir()}
        paths = [path for path in paths if path.stem in stems]
    for path in paths[: args.limit]:
        yield path.name, read_image(path)


def inputs(args: argparse.Namespace) -> Iterator[tuple[str, str, np.ndarray]]:
    """``(set, name, RGB image)`` for every input."""
    from p2c.stream.image_io import read_image

    yield "astronaut", "astronaut", read_image("builtin:astronaut")
    if args.tiny:
        return
    if args.clips is not None:
        for clip in sorted(args.clips.glob("*.mp4")):
            for name, frame in _clip_frames(clip, args.frames_per_clip):
                yield clip.stem, name, frame
    if args.photos is not None:
        for name, photo in _photos(args):
            yield args.photos.name if args.stems_from is None else args.stems_from.name, name, photo


# ---------------------------------------------------------------------------------------------
# Measuring


def _timed(paste, image: np.ndarray, faces: list, cartoons: list) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    paste(image, faces, cartoons)
    return (time.perf_counter() - wall) * 1000.0, (time.process_time() - cpu) * 1000.0


def _face_row(set_name: str, name: str, image: np.ndarray, face, cartoon: np.ndarray, repeat: int) -> Report:
    from p2c.stream.compositing import paste_cartoons
    from p2c.stream.paste_quality import measure_paste

    pastes = {"before": legacy_paste_cartoons, "after": paste_cartoons}
    row: Report = {
        "set": set_name,
        "name": name,
        "face_px": float(256 / np.sqrt(abs(np.linalg.det(face.transform[:, :2])))),
    }
    times: dict[str, list[tuple[float, float]]] = {key: [] for key in pastes}
    for _ in range(repeat):
        for key, paste in pastes.items():
            times[key].append(_timed(paste, image, [face], [cartoon]))
    for key, paste in pastes.items():
        composite = paste(image, [face], [cartoon])
        row[key] = measure_paste(image, composite, face.transform, face.mask).as_dict()
        row[key]["wall_ms"] = float(np.median([t[0] for t in times[key]]))
        row[key]["cpu_ms"] = float(np.median([t[1] for t in times[key]]))
    return row


def _summary(rows: list[Report]) -> Report:
    """Per set and over all faces: the mean of each figure over the faces that have it."""
    sets = {"all": rows} | {
        s: [r for r in rows if r["set"] == s] for s in dict.fromkeys(r["set"] for r in rows)
    }
    summary: Report = {}
    for set_name, chosen in sets.items():
        entry: Report = {"faces": len(chosen)}
        for key in ("before", "after"):
            figures = chosen[0][key].keys()
            entry[key] = {
                figure: (float(np.nanmean(values)) if np.isfinite(values).any() else None)
                for figure in figures
                for values in [np.array([r[key][figure] for r in chosen], dtype=float)]
            }
        summary[set_name] = entry
    return summary


def run(args: argparse.Namespace) -> Report:
    from p2c.engine import EngineConfig, create_engine
    from p2c.stream.faces import FaceAligner
    from p2c.stream.stills import cartoon_faces
    from p2c.stream.threads import RUN_OPENCV_THREADS, opencv_threads

    repeat = 1 if args.tiny else args.repeat
    load_before = os.getloadavg()
    rows: list[Report] = []
    engine = create_engine(args.weights, EngineConfig())
    try:
        # OpenCV's threads as during a video run, so the paste costs what it costs there.
        with FaceAligner() as aligner, opencv_threads(RUN_OPENCV_THREADS):
            for set_name, name, image in inputs(args):
                faces = aligner.align(image, max_faces=1)
                if not faces:
                    continue
                (cartoon,) = cartoon_faces(engine, faces)
                rows.append(_face_row(set_name, name, image, faces[0], cartoon, repeat))
    finally:
        engine.close()
    report: Report = {
        "what": "halo and seam of each pasted face, before and after issue 24's fix "
        "(see p2c.stream.paste_quality)",
        "weights": "shipped default" if args.weights is None else str(args.weights),
        "repeat": repeat,
        "opencv_threads": RUN_OPENCV_THREADS,
        "summary": _summary(rows),
        "faces": rows,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    write_report(args.out, NAME, report, _table(report), _plot)
    return report


# ---------------------------------------------------------------------------------------------
# Reporting


def _one(value: float | None, percent: bool = False) -> str:
    if value is None:
        return "-"
    return f"{100 * value:.1f} %" if percent else f"{value:.2f}"


def _cell(before: float | None, after: float | None, percent: bool = False) -> str:
    return f"{_one(before, percent)} -> {_one(after, percent)}"


HALO_COLUMNS = (
    ("outside_excess_l", "L* added outside", False),
    ("glow_share", "share brightened > 8 L*", True),
    ("white_share", "near-white fringe inside", True),
)
SEAM_COLUMNS = (
    ("handover_step", "skin: hand-over step", False),
    ("edge_step", "skin: step at the crop's edge", False),
    ("seam_step", "skin: composite's step", False),
    ("photo_seam_step", "skin: photo's own step", False),
    ("body_handover_step", "body: hand-over step", False),
    ("body_edge_step", "body: step at the crop's edge", False),
)
TIME_COLUMNS = (("wall_ms", "wall ms", False), ("cpu_ms", "CPU ms (all threads)", False))


def _section(summary: Report, columns: tuple[tuple[str, str, bool], ...]) -> list[str]:
    """A Markdown table: a row per set, each cell ``before -> after``."""
    lines = [
        "| set | faces | " + " | ".join(header for _, header, _ in columns) + " |",
        "| --- | --- | " + " | ".join("---" for _ in columns) + " |",
    ]
    for set_name, entry in summary.items():
        cells = [_cell(entry["before"][key], entry["after"][key], percent) for key, _, percent in columns]
        lines.append(f"| {set_name} | {entry['faces']} | " + " | ".join(cells) + " |")
    return lines


def _table(report: Report) -> str:
    summary = report["summary"]
    return (
        "\n".join(
            [
                f"{summary['all']['faces']} faces, model: {report['weights']}; load average "
                f"{report['load_average_before'][0]:.1f} -> {report['load_average_after'][0]:.1f} "
                f"on {report['cpus']} CPUs. Each cell: before -> after (the mean over the set's faces that "
                "have such a place).",
                "",
                "Halo, 1-6 crop pixels outside the head's silhouette (and the 4 inside it):",
                "",
                *_section(summary, HALO_COLUMNS),
                "",
                "Seam, across the crop's edges where the person goes on (CIE76 steps over 8 crop pixels):",
                "",
                *_section(summary, SEAM_COLUMNS),
                "",
                f"Paste time per face, median of {report['repeat']}:",
                "",
                *_section(summary, TIME_COLUMNS),
            ]
        )
        + "\n"
    )


def _plot(report: Report, path: Path) -> None:
    plt = pyplot()
    summary = report["summary"]
    sets = list(summary)
    figures = [
        ("outside_excess_l", "L* added outside the head"),
        ("glow_share", "share brightened > 8 L*"),
        ("handover_step", "skin: hand-over step (dE)"),
        ("edge_step", "skin: step at the crop's edge (dE)"),
    ]
    figure, axes = plt.subplots(1, len(figures), figsize=(4 * len(figures), 3.2))
    positions = np.arange(len(sets))
    for axis, (key, title) in zip(axes, figures, strict=True):
        for offset, when in ((-0.2, "before"), (0.2, "after")):
            values = [summary[s][when][key] for s in sets]
            axis.bar(positions + offset, [np.nan if v is None else v for v in values], width=0.4, label=when)
        axis.set_xticks(positions, sets, rotation=30, ha="right", fontsize=7)
        axis.set_title(title, fontsize=9)
    axes[0].legend()
    save_figure(figure, path)


main = benchmark_command(NAME, build_parser, run, _table)

if __name__ == "__main__":
    sys.exit(main())
