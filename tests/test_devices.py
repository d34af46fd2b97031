"""Device names read one way (core.devices): ``cuda:N`` is a GPU wherever ``cuda`` is."""

from __future__ import annotations

from core.devices import CPU, CUDA, cuda_index, device_kind, is_cpu, is_cuda
from core.system import BUDGET_SHARE, GpuInfo, MachineInfo, available_memory_gb

import pytest


def _machine(ram_gb: float = 16.0, gpu_free_gb: tuple[float, ...] = (30.0, 70.0)) -> MachineInfo:
    gpus = [GpuInfo(i, "test GPU", 80.0, 80.0 - free) for i, free in enumerate(gpu_free_gb)]
    return MachineInfo(cpu_cores=2, cpu_model="test", ram_total_gb=ram_gb * 2,
                       ram_available_gb=ram_gb, swap_total_gb=0.0, swap_used_gb=0.0, gpus=gpus)


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:1", "cuda:12"])
def test_any_cuda_device_with_or_without_an_index_is_a_gpu(device):
    assert is_cuda(device) and not is_cpu(device)
    assert device_kind(device) == CUDA


@pytest.mark.parametrize("device", ["cpu", "", None])
def test_cpu_and_no_device_are_the_cpu(device):
    assert is_cpu(device) and not is_cuda(device)
    assert device_kind(device) == CPU


def test_a_name_that_only_starts_like_cuda_is_not_a_gpu():
    assert not is_cuda("cudax") and device_kind("cuda_1") == CPU


def test_the_gpu_index_is_the_one_named_and_zero_for_a_bare_cuda():
    assert cuda_index("cuda:1") == 1
    assert cuda_index("cuda:0") == 0
    assert cuda_index("cuda") == 0
    assert cuda_index("cpu") is None and cuda_index(None) is None


@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_the_memory_budget_of_an_indexed_gpu_is_gpu_memory_not_ram(device):
    # Before core.devices, only a bare "cuda" read GPU memory: "cuda:1" got the RAM.
    assert available_memory_gb(_machine(), device) == pytest.approx(70.0)


def test_the_memory_budget_on_the_cpu_or_without_gpus_is_available_ram():
    assert available_memory_gb(_machine(), "cpu") == pytest.approx(16.0)
    assert available_memory_gb(_machine(gpu_free_gb=()), "cuda:1") == pytest.approx(16.0)


def test_a_plan_for_an_indexed_gpu_is_budgeted_from_gpu_memory():
    from core.evaluation.planner import make_plan

    plan = make_plan([], _machine(), device="cuda:1")
    assert plan.available_gb == pytest.approx(70.0)
    assert plan.budget_gb == pytest.approx(70.0 * BUDGET_SHARE)


def test_a_cluster_run_on_an_indexed_gpu_counts_one_worker_per_gpu():
    from core.evaluation.cluster import shard_count

    resources = {"GPU": 3.0, "node:10.0.0.1": 1.0, "node:__internal_head__": 1.0}
    assert shard_count(resources, "cuda:1", 0) == shard_count(resources, "cuda", 0) == 3
    assert shard_count(resources, "cpu", 0) == 1


def test_a_chat_on_an_indexed_gpu_gets_the_gpu_answer_length():
    from core.llm.generate import CPU_MAX_NEW_TOKENS, GPU_MAX_NEW_TOKENS, default_max_new_tokens

    assert default_max_new_tokens("cuda:1") == default_max_new_tokens("cuda") \
        == GPU_MAX_NEW_TOKENS
    assert default_max_new_tokens("cpu") == CPU_MAX_NEW_TOKENS


def test_a_run_on_an_indexed_gpu_runs_on_that_gpu_alone():
    from core.evaluation.shards import DeviceError, parse_devices

    assert parse_devices(None, "cuda:1", visible_gpus=4) == ["cuda:1"]
    assert parse_devices(None, "cuda", visible_gpus=2) == ["cuda:0", "cuda:1"]
    with pytest.raises(DeviceError, match="only 1 GPU"):
        parse_devices(None, "cuda:1", visible_gpus=1)
