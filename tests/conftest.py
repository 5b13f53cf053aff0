"""Shared fixtures: tiny real models built once per test session, from a config, with no download."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
# Set before torch loads OpenMP: spinning threads starve each other on a busy CPU (bench/omp_wait_policy.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tiny_models")


@pytest.fixture(scope="session")
def quickstart_cache(tmp_path_factory: pytest.TempPathFactory):
    """One `$THRESHER_CACHE` for the session: the quickstart models (and the tiny judge) are built once,
    from scratch, by the first test that needs them, and shared by the rest."""
    path = tmp_path_factory.mktemp("thresher_cache")
    old = os.environ.get("THRESHER_CACHE")
    os.environ["THRESHER_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("THRESHER_CACHE", None)
    else:
        os.environ["THRESHER_CACHE"] = old


@pytest.fixture(scope="session")
def tiny_lm(tiny_dir: Path) -> Path:
    """A tiny random Qwen2ForCausalLM directory (weights, config, tokenizer with chat template)."""
    from thresher.tiny_models import build_causal_lm

    return build_causal_lm(tiny_dir / "lm", seed=0)


@pytest.fixture(scope="session")
def tiny_rm(tiny_dir: Path) -> Path:
    """A tiny random Qwen2ForSequenceClassification reward model directory (num_labels=1)."""
    from thresher.tiny_models import build_reward_model

    return build_reward_model(tiny_dir / "rm", seed=0)


@pytest.fixture(scope="session")
def tiny_vllm(tiny_lm: Path):
    """One vLLM engine over `tiny_lm` for the whole session, as a VLLMSampler named "tiny".

    Starting an engine takes about a minute on a CPU, so tests share this one;
    the raw `vllm.LLM` is `tiny_vllm.llm`. Tests using it are marked slow.
    """
    from thresher.sampling.vllm_backend import VLLMSampler

    sampler = VLLMSampler(str(tiny_lm), "tiny", dtype="float32", seed=0)
    yield sampler
    sampler.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def tiny_vllm_server(tiny_lm: Path, tmp_path_factory: pytest.TempPathFactory):
    """A real OpenAI-compatible `vllm serve` of `tiny_lm` on 127.0.0.1, served as model "tiny".

    Yields the base URL (`http://127.0.0.1:PORT/v1`). Started once per session
    (about a minute on a CPU) and stopped at its end; tests using it are slow.
    """
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    port = _free_port()
    log = tmp_path_factory.mktemp("vllm_server") / "server.log"
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(tiny_lm),
           "--served-model-name", "tiny", "--host", "127.0.0.1", "--port", str(port), "--dtype", "float32",
           "--no-enable-chunked-prefill"]  # vLLM's CPU worker crashes on seeded requests with split prefills
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 300
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"vllm server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"vllm server not up after 300 s:\n{log.read_text()[-3000:]}")
            time.sleep(1)
        yield base_url
    finally:
        stop_group(proc, signal.SIGTERM, timeout=30)


def stop_group(proc, sig: int, timeout: float) -> None:
    """Stop a process started with `start_new_session=True` and its children: `sig`, then SIGKILL after `timeout`."""
    import signal
    import subprocess

    if proc.poll() is not None:
        return
    os.killpg(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium from the system packages for the whole session, driven by selenium (no download)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def ray_cluster():
    """A real two-node Ray cluster on this machine (loopback, one CPU per node), stopped at the session's end.

    Its nodes import thresher from this checkout and the tests' task helpers
    (`tests/ray_tasks.py`) from this directory. Tests using it are slow.
    """
    from thresher.executors.ray_cluster import LocalRayCluster

    here = Path(__file__).resolve().parent
    path = os.pathsep.join(p for p in (str(here.parent), str(here), os.environ.get("PYTHONPATH", "")) if p)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # loopback only; a token file in ~/.ray must not matter
    with LocalRayCluster(nodes=2, cpus_per_node=1, env={"PYTHONPATH": path}) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def ray_executor(ray_cluster):
    """A RayExecutor connected to `ray_cluster` for the whole session (this process's one Ray connection)."""
    from thresher.executors import ExecutorConfig
    from thresher.executors.ray import RayExecutor

    executor = RayExecutor(ExecutorConfig(type="ray", address=ray_cluster.address, max_retries=2))
    yield executor
    executor.close()
