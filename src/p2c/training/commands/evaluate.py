"""``p2c-eval``: score generators on held-out photos (identity kept; cartoon-ness; style; blotches).

One generator:  p2c-eval --weights run/export/p2c_genA2B_00100000.safetensors --photos data/testA
                         --cartoons data/testB --style-cartoons data/trainB data/testB --out eval
A run's checkpoints, naming the best:  p2c-eval --checkpoints run --photos data/testA --cartoons data/testB

Writes ``report.json`` (every figure, per photo too) and ``report.md`` (one row per generator,
with the style distance's calibration when one ships with p2c).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from p2c.cli import run_command
from p2c.errors import InputNotFoundError, InvalidInputError, OutputError
from p2c.files import atomic_write
from p2c.training.checkpoint import list_checkpoints

if TYPE_CHECKING:
    from p2c.training.evaluation import EvalReport

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="p2c-eval", description=__doc__.splitlines()[0].split(": ", 1)[1])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--weights", help="a generator (.safetensors, photo2cartoon .pt, p2c-train checkpoint)"
    )
    source.add_argument(
        "--checkpoints", help="a run folder (or its checkpoints/ folder): evaluate each, name the best"
    )
    parser.add_argument(
        "--photos", required=True, help="held-out photos: 256x256 crops, or raw photos (aligned here)"
    )
    parser.add_argument("--cartoons", required=True, help="reference cartoons (testB)")
    parser.add_argument(
        "--style-cartoons",
        nargs="+",
        default=None,
        help="the cartoon set of the style distance: one or more folders (default: --cartoons; "
        "its calibration is against trainB and testB)",
    )
    parser.add_argument("--out", default=None, help="report folder (default: eval/ beside the weights)")
    parser.add_argument(
        "--align",
        choices=("auto", "yes", "no"),
        default="auto",
        help="align photos first: auto = only images that are not 256x256 (default)",
    )
    parser.add_argument(
        "--faceid-weights", default=None, help="Face ID network weights (default: the shipped one)"
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-photos", type=int, default=None, help="evaluate only the first N photos")
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def _weights_list(args: argparse.Namespace) -> tuple[list[Path], Path]:
    if args.weights:
        path = Path(args.weights)
        if not path.is_file():
            raise InputNotFoundError(f"weights file {path} does not exist")
        return [path], Path(args.out) if args.out else path.parent / "eval"
    folder = Path(args.checkpoints)
    if not folder.is_dir():
        raise InputNotFoundError(f"checkpoint folder {folder} does not exist")
    inner = folder / "checkpoints"
    checkpoint_dir = inner if inner.is_dir() else folder
    paths = [path for _, path in list_checkpoints(checkpoint_dir)]
    if not paths:
        raise InvalidInputError(f"{checkpoint_dir} holds no p2c-train checkpoints (ckpt_*.pt)")
    return paths, Path(args.out) if args.out else checkpoint_dir.parent / "eval"


def _figure(value: float | None, form: str) -> str:
    return "n/a" if value is None else format(value, form)


def _summary(report: EvalReport) -> str:
    return (
        f"{report.weights}: KID {report.kid:.4f}  style distance {_figure(report.style_distance, '.3f')}  "
        f"blotches > 1 % {_figure(report.blotch_fraction, '.0%')}  "
        f"identity {_figure(report.identity_mean, '.4f')}  "
        f"rank-1 {_figure(report.identity_rank1, '.0%')}  "
        f"dlib distance {_figure(report.dlib_distance_mean, '.3f')} "
        f"(< 0.6: {_figure(report.dlib_same_fraction, '.0%')})  "
        f"P(cartoon) {_figure(report.cartoon_mean, '.3f')} "
        f"(>= 0.5: {_figure(report.cartoon_fraction, '.0%')})"
    )


def markdown(content: dict[str, Any], reports: list[EvalReport]) -> str:
    """One row per generator; the style distance's calibration under the table."""
    from p2c.training.style_distance import calibration_line

    lines = [
        f"p2c-eval of {len(reports)} generator(s) on `{content['photos_dir']}` (KID to "
        f"`{content['cartoons_dir']}`; style distance to "
        + ", ".join(f"`{folder}`" for folder in content["style_cartoons_dirs"])
        + ").",
        "",
        "| weights | style distance | blotches > 1 % | mean blotch share | P(cartoon) >= 0.5 "
        "| mean P(cartoon) | rank-1 | dlib distance | dlib < 0.6 | cosine identity | KID |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for report in reports:
        cells = [
            f"`{Path(report.weights).name}`",
            _figure(report.style_distance, ".3f"),
            _figure(report.blotch_fraction, ".0%"),
            _figure(report.blotch_share_mean, ".2%"),
            _figure(report.cartoon_fraction, ".0%"),
            _figure(report.cartoon_mean, ".3f"),
            _figure(report.identity_rank1, ".0%"),
            _figure(report.dlib_distance_mean, ".3f"),
            _figure(report.dlib_same_fraction, ".0%"),
            _figure(report.identity_mean, ".4f"),
            f"{report.kid:.4f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Best: `{content['best']}`.", ""]
    calibration = content.get("style_calibration")
    if calibration:
        lines.append(calibration_line(calibration))
    return "\n".join(lines) + "\n"


def _main(argv: Sequence[str] | None) -> int:
    import torch

    from p2c.devices import resolve_device
    from p2c.training.evaluation import evaluate_checkpoints, load_crops, load_faceid_or_none, write_json
    from p2c.training.style_distance import StyleReference, load_calibration

    args = build_parser().parse_args(argv)
    if args.batch_size < 1:
        raise InvalidInputError(f"--batch-size must be >= 1, got {args.batch_size}")
    weights, out_dir = _weights_list(args)
    photos_dir, cartoons_dir = Path(args.photos), Path(args.cartoons)
    names, photos, skipped = load_crops(photos_dir, args.align, args.max_photos)
    _, references, _ = load_crops(cartoons_dir, align="no")
    style_dirs = [Path(folder) for folder in args.style_cartoons or [cartoons_dir]]
    style_cartoons = [crop for folder in style_dirs for crop in load_crops(folder, align="no")[1]]
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create {out_dir}: {error.strerror or error}") from error
    device = resolve_device(args.device, 0)
    faceid, why = load_faceid_or_none(args.faceid_weights, device)
    if why:
        print(f"p2c-eval: identity similarity not measured: {why}", file=sys.stderr)
    with torch.inference_mode():
        reports, best = evaluate_checkpoints(
            weights,
            names,
            photos,
            references,
            faceid,
            device,
            out_dir,
            args.batch_size,
            StyleReference(style_cartoons),
        )
    for report in reports:
        report.skipped_photos = skipped
    content = {
        "photos_dir": str(photos_dir),
        "cartoons_dir": str(cartoons_dir),
        "style_cartoons_dirs": [str(folder) for folder in style_dirs],
        "metrics": {
            "kid": "KID on fixed colour/texture features vs. the reference cartoons (lower is better)",
            "style_distance": "KID to the style cartoons on line, flatness and face-layout features "
            "(about 0: as near as other cartoons of the set; lower is better)",
            "style_blocks": "each feature block's own KID (layout, colour, palette, lines, strength, flat)",
            "blotch_fraction": "fraction of cartoons whose head is over 1 % green-to-blue the photo was not",
            "blotch_share_mean": "mean share of the head in such blotches",
            "identity_mean": "mean cosine similarity of Face ID embeddings, photo vs cartoon (higher=better)",
            "identity_rank1": "fraction of photos whose own cartoon is the nearest of all cartoons (Face ID)",
            "dlib_distance_mean": "mean Euclidean distance of dlib's raw descriptors, photo vs cartoon",
            "dlib_same_fraction": "fraction of photo-cartoon pairs under dlib's same-person distance 0.6",
            "cartoon_mean": "mean P(cartoon) of the outputs by p2c's cartoon-ness gauge (higher=better)",
            "cartoon_fraction": "fraction of outputs with P(cartoon) >= 0.5",
            "reference_cartoon_mean": "the gauge's mean P(cartoon) of the reference cartoons",
        },
        "style_calibration": load_calibration(),
        "best": best.weights,
        "reports": [report.to_dict() for report in reports],
    }
    report_path = out_dir / "report.json"
    write_json(report_path, content)
    with atomic_write(out_dir / "report.md") as stream:
        stream.write(markdown(content, reports))
    for report in reports:
        print(_summary(report))
    if len(reports) > 1:
        print(f"best: {best.weights}")
    print(f"report: {report_path}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-eval")


if __name__ == "__main__":
    sys.exit(main())
