"""Sizing the workers to the cluster, refusing an address where nothing answers, and the summary."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest

from p2c.batch.cluster import ClusterUnavailableError, WorkerPlan, check_address, plan_workers
from p2c.batch.config import ClusterConfig
from p2c.batch.jobs import Job, Outcome, WorkerInfo
from p2c.batch.summary import SUMMARY_NAME, BatchSummary, FileRecord, write_summary
from p2c.errors import InvalidInputError

GPU_NODE = {"CPU": 16.0, "GPU": 4.0}
CPU_NODES = {"CPU": 8.0}


def test_one_worker_per_gpu_by_default() -> None:
    assert plan_workers(ClusterConfig(), GPU_NODE, nodes=1, local=False) == WorkerPlan(4, 1.0, 1.0)
    assert plan_workers(ClusterConfig(gpus_per_worker=0.5), GPU_NODE, 1, False) == WorkerPlan(8, 1.0, 0.5)


def test_one_worker_per_machine_without_gpus() -> None:
    assert plan_workers(ClusterConfig(), CPU_NODES, nodes=2, local=False) == WorkerPlan(2, 1.0, 0.0)
    # a local Ray shares this machine's cores among the workers
    assert plan_workers(ClusterConfig(workers=2), {"CPU": 8.0}, 1, local=True) == WorkerPlan(2, 4.0, 0.0)


def test_more_than_the_cluster_holds_is_one_line() -> None:
    with pytest.raises(ClusterUnavailableError, match=r"need 6 GPUs, the cluster has 4; use fewer --workers"):
        plan_workers(ClusterConfig(workers=6), GPU_NODE, 1, False)
    with pytest.raises(ClusterUnavailableError, match="need 10 CPUs, the cluster has 8"):
        plan_workers(ClusterConfig(workers=5, cpus_per_worker=2), CPU_NODES, 1, False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_address_where_nothing_listens_is_refused_at_once() -> None:
    port = _free_port()
    began = time.monotonic()
    with pytest.raises(ClusterUnavailableError, match=rf"no Ray cluster answers at 127.0.0.1:{port}"):
        check_address(f"127.0.0.1:{port}")
    with pytest.raises(ClusterUnavailableError, match="ray start --head"):
        check_address(f"ray://127.0.0.1:{port}")
    assert time.monotonic() - began < 10  # Ray itself would keep trying for minutes
    with pytest.raises(InvalidInputError, match="is not HOST:PORT"):
        check_address("head-node:port")


def test_summary_counts_exit_code_and_json(tmp_path: Path) -> None:
    job = Job(0, "in/a.mp4", "out/a.mp4", "video", 50)
    worker = WorkerInfo("host", 12, "cpu", "torch", "fp32", 1, 0.5)
    summary = BatchSummary(input="in", output=str(tmp_path), workers=[worker], elapsed_s=12.0, convert_s=10.0)
    summary.records = [
        FileRecord.of(job, "done", Outcome("done", frames=50, faces=50, seconds=9.0, worker=worker), 2),
        FileRecord.of(Job(1, "in/b.jpg", "out/b.jpg", "image"), "skipped"),
    ]
    assert summary.exit_code == 0
    assert (
        summary.line()
        == "1 converted, 1 skipped (already done), 0 failed; 50 frames at 5.0 frames/s, 12.0 s in all"
    )
    summary.records.append(FileRecord("in/c.mp4", "", "", "failed", error="cannot read in/c.mp4"))
    assert summary.exit_code == 1
    written = json.loads(write_summary(summary, tmp_path).read_text())
    assert (tmp_path / SUMMARY_NAME).is_file()
    assert written["counts"] == {"done": 1, "skipped": 1, "failed": 1, "interrupted": 0, "not started": 0}
    assert written["files"][0]["worker"] == "host:12" and written["files"][0]["attempts"] == 2
    assert written["workers"][0]["name"] == "host:12" and written["exit_code"] == 1
    summary.interrupted = True
    assert summary.exit_code == 130
