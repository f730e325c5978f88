"""``p2c-train``: train photo2cartoon's GAN on prepared crops; resume; export the A->B generator.

Single process: ``p2c-train --data DATA --out RUN``. Several GPUs (also across machines):
``torchrun --nproc_per_node 4 -m p2c.training.commands.train --data DATA --out RUN``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from p2c.cli import run_command
from p2c.errors import InvalidInputError
from p2c.training.config import AMP_MODES, LossWeights, TrainConfig

__all__ = ["build_parser", "config_from_args", "main"]

_DEFAULT = TrainConfig(data_dir="-", out_dir="-")
_FACEID_NOTE = "; 0 skips loading the Face ID network"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="p2c-train",
        description="Train photo2cartoon's GAN (two generators, four discriminators) on prepared crops.",
    )
    parser.add_argument("--data", help="dataset folder with trainA (photos) and trainB (cartoons)")
    parser.add_argument("--out", help="run folder: config.json, metrics.csv, samples/, checkpoints/, export/")
    add = parser.add_argument
    add(
        "--iterations",
        type=int,
        default=_DEFAULT.iterations,
        help="total training steps (default %(default)s)",
    )
    add("--stop-after", type=int, default=None, help="stop (with a checkpoint) at this step; --resume later")
    add(
        "--time-limit",
        type=float,
        default=None,
        metavar="MINUTES",
        help="stop (with a checkpoint) after the first step that ends past MINUTES of training",
    )
    add(
        "--slice-state",
        default=None,
        metavar="PATH",
        help="when training stops, also write a compact resume state (<= 60 MB) to PATH",
    )
    add(
        "--slice-generators",
        choices=("fp32", "fp16"),
        default=_DEFAULT.slice_generators,
        help="generators' precision in the slice state: fp32 (59 MB at full size) or fp16 (44 MB)",
    )
    add(
        "--resume-from",
        default=None,
        metavar="STATE",
        help="continue from a --slice-state file (fresh Adam, lr warmed up over --warmup-steps)",
    )
    add(
        "--warmup-steps",
        type=int,
        default=_DEFAULT.warmup_steps,
        help="learning-rate warm-up after --resume-from (default %(default)s)",
    )
    add("--batch-size", type=int, default=_DEFAULT.batch_size, help="per process (default %(default)s)")
    add("--img-size", type=int, default=_DEFAULT.img_size, help="crop size, >= 96 (default %(default)s)")
    add(
        "--ch", type=int, default=_DEFAULT.ch, help="base channel width of all networks (default %(default)s)"
    )
    add("--lr", type=float, default=_DEFAULT.lr, help="Adam learning rate (default %(default)s)")
    add(
        "--no-lr-decay",
        action="store_true",
        help="keep the learning rate constant (default: linear decay to 0 over the second half)",
    )
    weights = LossWeights()
    for name in ("adv", "cycle", "identity", "cam", "faceid"):
        add(
            f"--{name}-weight",
            type=float,
            default=getattr(weights, name),
            help=f"{name} loss weight (default %(default)s)" + (_FACEID_NOTE if name == "faceid" else ""),
        )
    add("--faceid-weights", default=None, help="Face ID network weights (default: the shipped one)")
    add("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    add("--pretrained", default=None, help="start from photo2cartoon_weights.pt or a p2c-train checkpoint")
    add("--device", default=_DEFAULT.device, help="auto, cpu, cuda, cuda:N (default %(default)s)")
    add(
        "--amp",
        choices=AMP_MODES,
        default=_DEFAULT.amp,
        help="mixed precision (auto: bf16 on CUDA, none on CPU)",
    )
    add("--compile", action="store_true", help="torch.compile the generators")
    add("--seed", type=int, default=_DEFAULT.seed)
    add("--num-workers", type=int, default=_DEFAULT.num_workers, help="data-loading processes per domain")
    add("--log-every", type=int, default=_DEFAULT.log_every)
    add("--sample-every", type=int, default=_DEFAULT.sample_every)
    add("--save-every", type=int, default=_DEFAULT.save_every)
    add("--export-every", type=int, default=_DEFAULT.export_every, help="0: export only when training ends")
    add("--keep-checkpoints", type=int, default=_DEFAULT.keep_checkpoints)
    add(
        "--compact-checkpoints",
        action="store_true",
        help="discriminators in FP16 in checkpoints (smaller; resume close but not bit-exact)",
    )
    add("--sample-rows", type=int, default=_DEFAULT.sample_rows)
    add("--dry-run", action="store_true", help="print the resolved configuration as JSON and exit")
    add(
        "--export",
        nargs=2,
        metavar=("CHECKPOINT", "OUT"),
        help="only export the A->B generator of CHECKPOINT to OUT(.safetensors + .json) and exit",
    )
    add(
        "--to-slice-state",
        nargs=2,
        metavar=("CHECKPOINT", "OUT"),
        help="only convert a p2c-train checkpoint into a slice state (<= 60 MB) and exit",
    )
    add("-v", "--verbose", action="store_true")
    return parser


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    if not args.data or not args.out:
        raise InvalidInputError("--data and --out are required (or use --export CHECKPOINT OUT)")
    data, out = Path(args.data).resolve(), Path(args.out).resolve()
    try:
        return TrainConfig(
            data_dir=str(data),
            out_dir=str(out),
            iterations=args.iterations,
            batch_size=args.batch_size,
            img_size=args.img_size,
            ch=args.ch,
            lr=args.lr,
            lr_decay=not args.no_lr_decay,
            weights=LossWeights(
                adv=args.adv_weight,
                cycle=args.cycle_weight,
                identity=args.identity_weight,
                cam=args.cam_weight,
                faceid=args.faceid_weight,
            ),
            faceid_weights=args.faceid_weights,
            pretrained=str(Path(args.pretrained).resolve()) if args.pretrained else None,
            resume=args.resume,
            resume_from=str(Path(args.resume_from).resolve()) if args.resume_from else None,
            slice_state=str(Path(args.slice_state).resolve()) if args.slice_state else None,
            warmup_steps=args.warmup_steps,
            slice_generators=args.slice_generators,
            device=args.device,
            amp=args.amp,
            compile=args.compile,
            seed=args.seed,
            num_workers=args.num_workers,
            log_every=args.log_every,
            sample_every=args.sample_every,
            save_every=args.save_every,
            export_every=args.export_every,
            keep_checkpoints=args.keep_checkpoints,
            compact_checkpoints=args.compact_checkpoints,
            sample_rows=args.sample_rows,
        )
    except ValueError as error:
        raise InvalidInputError(str(error)) from error


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.export:
        from p2c.training.export import export_checkpoint

        target = export_checkpoint(Path(args.export[0]), Path(args.export[1]))
        print(f"exported {target}")
        return 0
    if args.to_slice_state:
        from p2c.training.checkpoint import read_checkpoint
        from p2c.training.slice_state import write_slice_state

        source, target = Path(args.to_slice_state[0]), Path(args.to_slice_state[1])
        payload = read_checkpoint(source)
        if "optimizers" not in payload:
            raise InvalidInputError(f"{source} is not a p2c-train checkpoint (it has no training state)")
        size = write_slice_state(target, payload, generators=args.slice_generators)
        print(f"slice state {target} ({size / 1e6:.1f} MB), step {payload['step']}")
        return 0
    config = config_from_args(args)
    if args.stop_after is not None and args.stop_after < 1:
        raise InvalidInputError(f"--stop-after must be >= 1, got {args.stop_after}")
    if args.time_limit is not None and not args.time_limit > 0:
        raise InvalidInputError(f"--time-limit must be a positive number of minutes, got {args.time_limit}")
    if args.dry_run:
        print(config.to_json())
        return 0
    from p2c.training.trainer import train

    result = train(config, stop_after=args.stop_after, time_limit=args.time_limit)
    print(f"step {result.step}: run folder {result.run_dir}")
    if result.slice_state is not None:
        print(f"slice state: {result.slice_state}")
    if result.exported is not None:
        print(f"A->B generator: {result.exported}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_command(_main, argv, prog="p2c-train")


if __name__ == "__main__":
    sys.exit(main())
