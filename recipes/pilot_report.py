"""The pilot's table and the astronaut's grid: candidates trained for the same CPU time, scored alike.

    python recipes/pilot_report.py DATA OUT LABEL=WEIGHTS[:SAMPLES:CPU_SECONDS:WHAT] ... [--no-clips]
        [--amount A]

Each candidate is scored as the gate scores (``gate.output_figures``: on the 40 testA crops and
the astronaut, identity rank-1, dlib distances, the gauge's P(cartoon), cosine identity, KID to
testB and trainB, the style distance to trainB + testB and the blotches; ``gate.clip_figures``: on
``--clip-frames`` aligned frames of each clip, the dlib distances, P(cartoon), blotches and the
style distance). The cartoon set's features and the clip frames are taken once for all
candidates. Writes ``OUT/pilot.json``, ``OUT/pilot.md`` (the table) and ``OUT/pilot_astronaut.png``:
the astronaut (public domain) and each candidate's cartoon of her. One torch thread.

``--amount A`` scores each candidate that has a sharpening stage a second time with its unsharp
amount set to A, as ``default_model.sh sharpen A`` sets it at shipping (a row ``LABEL@A``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gate  # recipes/gate.py

GeneratorT = TypeVar("GeneratorT", bound=torch.nn.Module)


def parse_candidate(text: str) -> dict[str, object]:
    label, _, rest = text.partition("=")
    weights, *meta = rest.split(":", 3)
    keys = ("samples", "cpu_seconds", "what")
    values: dict[str, object] = {"label": label, "weights": weights}
    for key, value in zip(keys, meta, strict=False):
        values[key] = value if key == "what" else float(value)
    return values


def with_amount(generator: GeneratorT, amount: float) -> GeneratorT | None:
    """``generator`` with its unsharp amount set to ``amount`` (in place); None without the stage."""
    from p2c.models.compact import with_sharpen_amount

    state = generator.state_dict()
    if "sharpen_amount" not in state:
        return None
    generator.load_state_dict(with_sharpen_amount(state, amount))
    return generator


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| candidate | what | samples in the budget | style distance | blotches > 1 %: testA | clips "
        "| P(cartoon) >= 0.5: testA + astronaut | clips | mean P(cartoon) | rank-1 | dlib < 0.6 | clips "
        "| cosine identity | KID testB |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        cells = [
            row["label"],
            row.get("what", ""),
            f"{int(row.get('samples', 0)):,}",
            f"{row['style_distance_testA']:.2f}",
            _percent(row["blotch_fraction_testA"]),
            _percent(row.get("blotch_fraction_clips")),
            _percent(row["cartoon_fraction"]),
            _percent(row.get("cartoon_fraction_clips")),
            f"{row['cartoon_testA_mean']:.3f}",
            _percent(row["identity_rank1_testA"]),
            _percent(row["dlib_same_fraction"]),
            _percent(row.get("dlib_same_fraction_clips")),
            f"{row['identity_testA_mean']:.4f}",
            f"{row['kid']['testB']:.2f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("candidates", nargs="+", type=parse_candidate)
    parser.add_argument("--clips", type=Path, nargs="+", default=sorted(gate.MEDIA.glob("*.mp4")))
    parser.add_argument("--clip-frames", type=int, default=gate.CLIP_MEASURE_FRAMES)
    parser.add_argument("--no-clips", action="store_true", help="testA and the astronaut only")
    parser.add_argument("--amount", type=float, help="also score each with its unsharp amount set to this")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from p2c.models.weights import load_generator
    from p2c.training.faceid import load_faceid
    from p2c.training.gauge import load_gauge
    from p2c.training.samples import tensor_to_rgb, write_png
    from p2c.training.style_distance import calibration_line, load_calibration

    torch.set_num_threads(1)
    device = torch.device("cpu")
    faceid, gauge_net = load_faceid(), load_gauge()
    astronaut = gate.astronaut_crop(None)
    style = gate.style_reference(args.data)
    clips = [] if args.no_clips else args.clips
    frames = {clip.name: gate.clip_frames(clip, args.clip_frames) for clip in clips}
    rows, cartoons = [], []
    scored = []
    for candidate in args.candidates:
        generator = load_generator(str(candidate["weights"])).eval()
        scored.append((candidate, generator))
        if args.amount is not None and (
            sharpened := with_amount(load_generator(str(candidate["weights"])), args.amount)
        ):
            label = f"{candidate['label']}@{args.amount:g}"
            scored.append(({**candidate, "label": label, "amount": args.amount}, sharpened.eval()))
    for candidate, generator in scored:
        figures = gate.output_figures(generator, faceid, gauge_net, args.data, astronaut, device, style)
        if frames:
            figures.update(gate.clip_figures(generator, faceid, gauge_net, frames, style, device))
        rows.append({**candidate, **figures})
        with torch.no_grad():
            cartoons.append(tensor_to_rgb(gate.cartoonise(generator, [astronaut], device))[0])
        shown = ("style_distance_testA", "blotch_fraction_testA", "cartoon_fraction", "identity_rank1_testA")
        print(candidate["label"], json.dumps({k: figures[k] for k in shown}))
    (args.out / "pilot.json").write_text(json.dumps(rows, indent=2, default=str) + "\n")
    write_png(args.out / "pilot_astronaut.png", np.concatenate([astronaut, *cartoons], axis=1))
    lines = table(rows)
    calibration = load_calibration()
    if calibration:
        lines += ["", calibration_line(calibration)]
    (args.out / "pilot.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
