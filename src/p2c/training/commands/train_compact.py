"""``p2c-train --preset compact``: the compact generator with the one-sided CPU objective.

What p2c's default model is trained with, and what a user runs to make a style on a laptop:

    p2c-train --preset compact --data DATA --out runs/mine            # until Ctrl-C; resumes
    p2c-train --preset compact --data DATA --out runs/mine --cpu-hours 3 --state-dir mine_state

Ctrl-C (or SIGTERM) finishes the step under way and writes the state; the same command resumes.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from p2c.cli import run_command
from p2c.errors import InvalidInputError
from p2c.models.compact import HEADS, CompactConfig
from p2c.training.compact_run import PRECISIONS, CompactRunConfig, train_compact
from p2c.training.onesided import OneSidedConfig, OneSidedWeights

__all__ = ["build_parser", "config_from_args", "main"]


def _widths(text: str) -> tuple[int, int, int]:
    parts = tuple(int(p) for p in text.split(","))
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"--widths takes three numbers such as 16,32,64, got {text!r}")
    return parts  # type: ignore[return-value]


def _layers(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"--nce-layers takes numbers such as 2,3,4, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    base = CompactRunConfig(data_dir="", out_dir="")
    objective, generator, weights = OneSidedConfig(), CompactConfig(), OneSidedWeights()
    parser = argparse.ArgumentParser(
        prog="p2c-train --preset compact",
        description=(
            "Train p2c's compact generator with the one-sided objective (FastCUT + DiffAugment); "
            "a CPU is enough."
        ),
    )
    add = parser.add_argument
    add("--preset", choices=["compact"], default="compact", help=argparse.SUPPRESS)
    add("--data", required=True, help="prepared crops: DATA/trainA (photos) and DATA/trainB (cartoons)")
    add("--out", required=True, help="run folder: state.pt (resumable), metrics.csv, samples/, config.json")
    add("--state-dir", default=None, help="also write the portable FP16 state here (a few MB; commit it)")
    add(
        "--init-from",
        default=None,
        help="continue from a portable state (fresh optimisers) when it is further on",
    )
    add("--max-steps", type=int, default=None, help="stop at this step (default: run until Ctrl-C)")
    add("--cpu-hours", type=float, default=None, help="stop after this much CPU time in this process")
    add("--batch-size", type=int, default=base.batch_size)
    add("--img-size", type=int, default=base.img_size, help="final crop size (default %(default)s)")
    add("--size-schedule", default=base.size_schedule, help="smaller sizes first, e.g. 128:20000 (steps)")
    add("--identity-steps", type=int, default=base.identity_steps, help="warm-up steps returning the input")
    add("--threads", type=int, default=base.threads, help="CPU threads in all (default %(default)s)")
    add(
        "--processes",
        type=int,
        default=base.processes,
        help="data-parallel processes sharing --threads (default %(default)s)",
    )
    add(
        "--precision",
        choices=list(PRECISIONS),
        default=base.precision,
        help="autocast; auto: bf16 where the CPU has it natively, else fp32 (default %(default)s)",
    )
    add("--seed", type=int, default=base.seed)
    add("--save-minutes", type=float, default=base.save_minutes)
    add("--sample-minutes", type=float, default=base.sample_minutes)
    add("--log-every", type=int, default=base.log_every)
    add(
        "--widths",
        type=_widths,
        default=generator.widths,
        help="generator channels at 1/2,1/4,1/8 (a narrower --init-from state is widened to them)",
    )
    add("--blocks", type=int, default=generator.blocks)
    add(
        "--head",
        choices=list(HEADS),
        default=generator.head,
        help="output stage: bilinear, or shuffle (full-resolution detail at the same cost; a bilinear "
        "state converts exactly)",
    )
    add(
        "--sharpen",
        action=argparse.BooleanOptionalAction,
        default=generator.sharpen,
        help="a learned unsharp mask on the generator's output",
    )
    add("--disc-width", type=int, default=objective.disc_width)
    add("--lr", type=float, default=objective.lr)
    add("--nce-weight", type=float, default=weights.nce)
    add("--adv-weight", type=float, default=weights.adv)
    add("--faceid-weight", type=float, default=weights.faceid)
    add(
        "--stability-weight",
        type=float,
        default=weights.stability,
        help="L1 between the cartoon of a jittered photo and the jittered cartoon (video stability)",
    )
    add(
        "--stability-blur",
        type=float,
        default=objective.stability_blur,
        help="Gaussian sigma (pixels at 256 px) both sides of the stability loss are blurred by (0: none)",
    )
    add("--parts-weight", type=float, default=weights.parts, help="eye and mouth discriminators (0: none)")
    add("--surface-weight", type=float, default=weights.surface, help="white-box surface discriminator")
    add("--texture-weight", type=float, default=weights.texture, help="white-box texture discriminator")
    add(
        "--colour-weight",
        type=float,
        default=weights.colour,
        help="foreign-colour loss: no green or blue the photo had not (video light's blotches)",
    )
    add(
        "--identity-weight",
        type=float,
        default=weights.identity,
        help="contrastive identity loss: each cartoon nearer its own photo than others' (Face ID network)",
    )
    add(
        "--nce-layers",
        type=_layers,
        default=objective.nce_layers,
        help="encoder layers the contrastive loss keeps, e.g. 2,3,4 (default: all five)",
    )
    add(
        "--camera-light",
        type=float,
        default=base.camera_light,
        help="share of photos shown in webcam and video light: shading, exposure, colour, noise, blur, JPEG",
    )
    add(
        "--faceid-weights",
        default=None,
        help="Face ID network (default: dlib's, from face_recognition_models)",
    )
    add("--augment", default=objective.augment_policy, help="DiffAugment policy (default %(default)s)")
    add("--progress", action=argparse.BooleanOptionalAction, default=sys.stderr.isatty())
    add("--dry-run", action="store_true", help="print the resolved configuration as JSON and exit")
    add("-v", "--verbose", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> CompactRunConfig:
    try:
        objective = OneSidedConfig(
            generator=CompactConfig(
                img_size=args.img_size,
                widths=args.widths,
                blocks=args.blocks,
                head=args.head,
                sharpen=args.sharpen,
            ),
            disc_width=args.disc_width,
            weights=OneSidedWeights(
                adv=args.adv_weight,
                nce=args.nce_weight,
                faceid=args.faceid_weight,
                stability=args.stability_weight,
                parts=args.parts_weight,
                surface=args.surface_weight,
                texture=args.texture_weight,
                colour=args.colour_weight,
                identity=args.identity_weight,
            ),
            nce_layers=args.nce_layers,
            stability_blur=args.stability_blur,
            augment_policy=args.augment,
            lr=args.lr,
        )
        return CompactRunConfig(
            data_dir=str(Path(args.data).resolve()),
            out_dir=str(Path(args.out).resolve()),
            objective=objective,
            seed=args.seed,
            batch_size=args.batch_size,
            img_size=args.img_size,
            size_schedule=args.size_schedule,
            identity_steps=args.identity_steps,
            camera_light=args.camera_light,
            threads=args.threads,
            processes=args.processes,
            precision=args.precision,
            save_minutes=args.save_minutes,
            sample_minutes=args.sample_minutes,
            log_every=args.log_every,
            max_steps=args.max_steps,
            cpu_hours=args.cpu_hours,
            state_dir=str(Path(args.state_dir).resolve()) if args.state_dir else None,
            init_from=str(Path(args.init_from).resolve()) if args.init_from else None,
            faceid_weights=args.faceid_weights,
        )
    except ValueError as error:
        raise InvalidInputError(str(error)) from error


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    config = config_from_args(args)
    if args.dry_run:
        print(json.dumps(config.to_dict(), indent=2))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    result = train_compact(config, progress_bar=args.progress)
    print(
        f"step {result.step} ({result.samples} samples, "
        f"{result.cpu_seconds / 3600:.2f} CPU-hours): {result.out_dir}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-train")


if __name__ == "__main__":
    sys.exit(main())
