"""Progressive resolution: the crop size of each training step, from ``--size-schedule``.

``128:2000,256:8000`` trains steps 1-2000 on 128 px crops and the steps after them on 256 px; the
last size also runs any steps past the schedule's sum, up to ``--iterations``. The size is a pure
function of the step, so a run stopped and resumed on either side of a switch sees the same crops
as an uninterrupted one. The networks do not change: the light generator and both discriminators
are fully convolutional, with global pooling before their fully connected layers.
"""

from __future__ import annotations

__all__ = ["SizeSchedule", "format_size_schedule", "parse_size_schedule", "size_at"]

SizeSchedule = tuple[tuple[int, int], ...]  # ((size, steps), ...)


def parse_size_schedule(text: str) -> SizeSchedule:
    """``"128:2000,256:8000"`` -> ``((128, 2000), (256, 8000))``; ValueError names the bad part."""
    schedule = []
    for part in text.replace(" ", "").split(","):
        size, _, steps = part.partition(":")
        try:
            schedule.append((int(size), int(steps)))
        except ValueError:
            raise ValueError(
                f"size schedule entry {part!r} is not SIZE:STEPS (e.g. 128:2000,256:8000)"
            ) from None
    return tuple(schedule)


def format_size_schedule(schedule: SizeSchedule) -> str:
    return ",".join(f"{size}:{steps}" for size, steps in schedule)


def size_at(schedule: SizeSchedule, img_size: int, step: int) -> int:
    """The crop size of training step ``step`` (1-based); ``img_size`` without a schedule."""
    end = 0
    for size, steps in schedule:
        end += steps
        if step <= end:
            return size
    return schedule[-1][0] if schedule else img_size
