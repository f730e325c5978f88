"""Sinks by name, and the one way every command line turns its options into sinks.

Adding a sink is one module (a :class:`p2c.stream.sinks.base.FrameSink` with an ``option`` and a
``for_output``) and one line in ``SINKS``: ``p2c-video``, ``p2c-stream`` and
:meth:`p2c.Cartoonizer.video` then all offer it. Each sink module imports its heavy library
(PyAV, pyvirtualcam, OpenCV's GUI) only when the sink opens.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from p2c.errors import OutputError
from p2c.stream.sinks.base import FrameSink, OutputValue, SinkTarget
from p2c.stream.sinks.null import NullSink
from p2c.stream.sinks.preview import PreviewSink
from p2c.stream.sinks.video_file import VideoFileSink
from p2c.stream.sinks.virtualcam import VirtualCameraSink

__all__ = [
    "SINKS",
    "add_sink_arguments",
    "build_sinks",
    "check_outputs",
    "create_sink",
    "offered_outputs",
    "outputs_from_args",
]

SINKS: dict[str, type[FrameSink]] = {
    "file": VideoFileSink,
    "virtualcam": VirtualCameraSink,
    "preview": PreviewSink,
    "null": NullSink,
}


def _sink_type(name: str) -> type[FrameSink]:
    try:
        return SINKS[name]
    except KeyError:
        raise ValueError(f"unknown sink {name!r}; choose one of {sorted(SINKS)}") from None


def create_sink(name: str, **options: Any) -> FrameSink:
    """Build the sink registered as ``name``; ``ValueError`` listing the names for an unknown one."""
    return _sink_type(name)(**options)


def _dest(name: str) -> str:
    return f"sink_{name}"


def add_sink_arguments(parser: argparse.ArgumentParser, positional: str | None = None) -> None:
    """One option per registered sink (``--output FILE``, ``--virtualcam``, ``--preview``).

    ``positional`` names the sink whose path is a positional argument ``OUT`` instead
    (``p2c-video IN OUT``); it may be left out when another output is asked for (``--null``).
    """
    group = parser.add_argument_group("outputs")
    for name, sink in SINKS.items():
        option = sink.option
        if option is None:
            continue
        if name == positional:
            parser.add_argument(_dest(name), metavar="OUT", type=Path, nargs="?", help=option.help)
        elif option.metavar is None:
            group.add_argument(option.flag, dest=_dest(name), action="store_true", help=option.help)
        else:
            group.add_argument(
                option.flag,
                dest=_dest(name),
                type=Path,
                default=None,
                metavar=option.metavar,
                help=option.help,
            )


def offered_outputs(positional: str | None = None) -> str:
    """The sink options as a user types them: ``--output FILE, --virtualcam or --preview``;
    ``positional``: the sink given as ``OUT`` instead (``p2c-video``), left out."""
    typed = [
        f"{sink.option.flag} {sink.option.metavar}" if sink.option.metavar else sink.option.flag
        for name, sink in SINKS.items()
        if sink.option is not None and name != positional
    ]
    return ", ".join(typed[:-1]) + f" or {typed[-1]}" if len(typed) > 1 else "".join(typed)


def outputs_from_args(args: argparse.Namespace) -> dict[str, OutputValue]:
    """``{sink name: option value}`` for every sink the parsed command line asks for."""
    given = vars(args)
    return {name: value for name in SINKS if (value := given.get(_dest(name)))}


def check_outputs(outputs: Mapping[str, OutputValue], source: str | os.PathLike[str] | None = None) -> None:
    """Fail in one line, before anything slow opens, when an output cannot work: an unknown sink
    (``ValueError``), a missing folder, or a file output that is the ``source`` itself."""
    for name, value in outputs.items():
        _sink_type(name).check_output(value)
        if (
            source is not None
            and not isinstance(value, bool)
            and Path(value).resolve() == Path(source).resolve()
        ):
            raise OutputError(f"the output {value} is the input; write to another file")


def build_sinks(outputs: Mapping[str, OutputValue], target: SinkTarget) -> list[FrameSink]:
    """The sinks ``outputs`` asks for, in registry order, each sized for ``target`` (not yet opened:
    the pipeline opens and closes them)."""
    for name in outputs:
        _sink_type(name)
    return [sink.for_output(outputs[name], target) for name, sink in SINKS.items() if name in outputs]
