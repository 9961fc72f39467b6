import threading

import numpy as np
import pytest
import torch

from napari_attnseg.config import InferConfig
from napari_attnseg.inference.predict import predict
from napari_attnseg.runtime import cpu_threads


def _tree(root, cgroup_line: str, files: dict[str, str]):
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/self/cgroup").write_text(cgroup_line + "\n")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


@pytest.mark.parametrize(
    "cgroup_line, files, expected",
    [
        # cgroup v2, a job with 2.5 CPUs and a step below it without a limit of its own
        ("0::/job/step", {"sys/fs/cgroup/job/cpu.max": "250000 100000",
                          "sys/fs/cgroup/job/step/cpu.max": "max 100000"}, 2),
        # inside a container: its own cgroup is the root of the mount
        ("0::/", {"sys/fs/cgroup/cpu.max": "400000 100000"}, 4),
        ("0::/", {"sys/fs/cgroup/cpu.max": "50000 100000"}, 1),  # half a CPU: still one thread
        ("0::/", {"sys/fs/cgroup/cpu.max": "max 100000"}, None),
        # cgroup v1 (docker --cpus on an older host), the tighter of two levels
        ("4:cpu,cpuacct:/docker/abc", {"sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us": "600000",
                                       "sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us": "100000",
                                       "sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us": "300000",
                                       "sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us": "100000"}, 3),
        ("1:cpu:/", {"sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1", "sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000"},
         None),
        ("1:cpu:/", {}, None),  # no controller files
        ("0::/", {"sys/fs/cgroup/cpu.max": "garbage"}, None),
        ("4:memory:/x", {"sys/fs/cgroup/memory/x/cpu.max": "100000 100000"}, None),  # not the cpu controller
    ],
)
def test_cpu_quota_reads_cgroups(tmp_path, cgroup_line, files, expected):
    assert cpu_threads.cpu_quota(_tree(tmp_path, cgroup_line, files)) == expected


def test_no_proc_means_no_quota(tmp_path):
    assert cpu_threads.cpu_quota(tmp_path) is None  # macOS, Windows


@pytest.fixture
def thread_calls(monkeypatch):
    """torch's thread setting recorded instead of changed (it is process state other tests share)."""
    calls = []
    monkeypatch.setattr(torch, "get_num_threads", lambda: calls[-1] if calls else 8)
    monkeypatch.setattr(torch, "set_num_threads", calls.append)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    return calls


@pytest.mark.parametrize("quota, expected_calls", [(2, [2]), (8, []), (16, []), (None, [])])
def test_threads_are_lowered_to_the_quota_only(monkeypatch, thread_calls, quota, expected_calls):
    monkeypatch.setattr(cpu_threads, "_QUOTA", {"cpus": quota})
    assert cpu_threads.fit_threads_to_cpu_quota() == (quota if expected_calls else 8)
    assert thread_calls == expected_calls


@pytest.mark.parametrize("variable", ["OMP_NUM_THREADS", "MKL_NUM_THREADS"])
def test_an_explicit_thread_setting_wins(monkeypatch, thread_calls, variable):
    monkeypatch.setattr(cpu_threads, "_QUOTA", {"cpus": 1})
    monkeypatch.setenv(variable, "8")
    assert cpu_threads.fit_threads_to_cpu_quota() == 8 and thread_calls == []


def test_the_quota_is_read_once(monkeypatch, thread_calls):
    reads = []
    monkeypatch.setattr(cpu_threads, "_QUOTA", {})
    monkeypatch.setattr(cpu_threads, "cpu_quota", lambda: reads.append(1) or 4)
    cpu_threads.fit_threads_to_cpu_quota()
    cpu_threads.fit_threads_to_cpu_quota()
    assert reads == [1] and thread_calls == [4]


def test_prediction_in_a_worker_thread_keeps_to_the_quota(monkeypatch, tiny_model):
    # torch keeps thread counts per thread: the limit must reach the thread that computes (a napari
    # worker), and leave the others alone
    monkeypatch.setattr(cpu_threads, "_QUOTA", {"cpus": 1})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    seen = []

    def work():
        predict(np.random.default_rng(0).random((64, 64), dtype=np.float32), tiny_model, InferConfig(device="cpu"))
        seen.append(torch.get_num_threads())

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    assert seen == [1]
    assert torch.get_num_threads() == before
