"""Kubernetes through dagster-k8s, with no cluster: the executor's configuration passes dagster-k8s's own schema,
``huracan k8s-manifest`` prints the Jobs its step handler would submit (a GPU for the training step that wants one,
never for a data step), and the deploy files (deploy/k8s/dagster.yaml, deploy/helm/values.yaml, the Dockerfile's
CUDA variant) agree with each other and with Dagster's schemas."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config
from dagster_k8s import K8sRunLauncher, k8s_job_executor

from huracan_assets.defs.build import build_definitions
from huracan_assets.k8s import executor_config, requests_gpu, step_jobs
from huracan_assets.names import ACCELERATOR_TAG
from huracan_assets.settings import load_settings

REPO = Path(__file__).resolve().parents[2]
DATA_ASSETS = ("candles", "spreads", "features", "labels", "regimes", "meta_weights", "engine_signals",
               "shadow_trades", "param_posteriors")  # fmt: skip
SHARD = "challenger_model.challenger_shard"


def _settings(home, *, gpu: bool = False, kind: str = "lightgbm"):
    settings = load_settings("prod", home=str(home))
    return settings.model_copy(
        update={
            "execution": settings.execution.model_copy(update={"executor": "k8s"}),
            "models": settings.models.model_copy(update={"gpu_request": gpu, "kind": kind}),
        }
    )


def _jobs(settings, asset: str) -> dict[str, dict]:
    return dict(step_jobs(settings, asset))


@pytest.mark.parametrize(("gpu", "kind", "wanted"), [(True, "lightgbm", True), (False, "torch_mlp", True),
                                                     (False, "lightgbm", False)])  # fmt: skip
def test_only_a_training_step_that_wants_a_gpu_requests_one(home, gpu, kind, wanted):
    settings = _settings(home, gpu=gpu, kind=kind)
    jobs = _jobs(settings, "challenger_model")
    assert sorted(jobs) == sorted(f"challenger_model.challenger_{s}" for s in ("plan", "shard", "collect"))
    assert requests_gpu(jobs[SHARD]) is wanted
    assert not requests_gpu(jobs["challenger_model.challenger_plan"])
    assert not requests_gpu(jobs["challenger_model.challenger_collect"])
    pod = jobs[SHARD]["spec"]["template"]["spec"]
    if wanted:
        assert pod["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "1"}
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    else:
        assert "nodeSelector" not in pod and "tolerations" not in pod
    k = settings.kubernetes
    container = pod["containers"][0]
    assert container["image"] == k.image and jobs[SHARD]["metadata"]["namespace"] == k.namespace
    assert container["resources"]["requests"]["cpu"] == k.step_cpu
    assert {s["secretRef"]["name"] for s in container["envFrom"]} == set(k.env_secrets)  # secrets by reference


def test_data_steps_never_request_a_gpu(home):
    settings = _settings(home, gpu=True, kind="torch_mlp")
    for asset in DATA_ASSETS:
        for step, manifest in step_jobs(settings, asset):
            assert not requests_gpu(manifest), step


def test_the_executor_config_passes_dagster_k8s_schema_and_caps_gpu_steps(home):
    settings = _settings(home, gpu=True)
    config = executor_config(settings)
    result = process_config(resolve_to_config_type(k8s_job_executor.config_schema.config_type), config)
    assert result.success, result.errors
    gpu_limit = [c for c in config["tag_concurrency_limits"] if c["key"] == ACCELERATOR_TAG]
    assert gpu_limit == [{"key": ACCELERATOR_TAG, "value": "gpu", "limit": settings.kubernetes.gpu_steps}]
    defs = build_definitions(settings)
    job = defs.resolve_job_def("symbol_day_job")
    assert job.executor_def.name == "huracan_k8s"
    shard = next(op for op in job.all_node_defs if op.name == "challenger_shard")
    assert shard.tags[ACCELERATOR_TAG] == "gpu"  # the tag the concurrency limit counts
    bad = process_config(
        resolve_to_config_type(k8s_job_executor.config_schema.config_type), {**config, "job_namspace": "x"}
    )
    assert not bad.success  # the schema check can fail


def test_the_manifest_command_prints_one_yaml_job_per_step(home):
    env = {"HURACAN_HOME": str(home), "HURACAN_ENV": "local", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "huracan_assets.cli", "k8s-manifest", "challenger_model", "--gpu"],
                         capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    docs = list(yaml.safe_load_all(out.stdout))
    assert [d["kind"] for d in docs] == ["Job"] * 3
    by_step = {d["metadata"]["labels"]["dagster/op"]: d for d in docs}
    assert requests_gpu(by_step[SHARD]) and not requests_gpu(by_step["challenger_model.challenger_plan"])
    assert re.search(r"# step challenger_model.challenger_shard: requests nvidia.com/gpu", out.stdout)
    missing = subprocess.run([sys.executable, "-m", "huracan_assets.cli", "k8s-manifest", "no_such_asset"],
                             capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert missing.returncode == 2 and "no asset 'no_such_asset'" in missing.stderr


PG_ENV = {"DAGSTER_PG_HOST": "pg", "DAGSTER_PG_PORT": "5432", "DAGSTER_PG_USER": "u", "DAGSTER_PG_PASSWORD": "p",
          "DAGSTER_PG_DB": "d"}  # fmt: skip


def _snake(value):
    if isinstance(value, dict):
        return {re.sub(r"(?<!^)(?=[A-Z])", "_", k).lower(): _snake(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_snake(v) for v in value]
    return value


def test_the_k8s_instance_and_the_helm_values_agree_and_pass_the_schemas(monkeypatch):
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    k8s, _ = dagster_instance_config(str(REPO / "deploy" / "k8s"), config_filename="dagster.yaml")
    root, _ = dagster_instance_config(str(REPO), config_filename="dagster.yaml")
    for section in ("storage", "run_coordinator", "run_monitoring", "retention", "telemetry"):
        assert k8s[section] == root[section], section  # only the launcher differs from the compose instance
    launcher = k8s["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_k8s", "K8sRunLauncher")
    checked = process_config(resolve_to_config_type(K8sRunLauncher.config_type()), launcher["config"])
    assert checked.success, checked.errors

    values = yaml.safe_load((REPO / "deploy" / "helm" / "values.yaml").read_text())
    helm = _snake(values["runLauncher"]["config"]["k8sRunLauncher"])
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    config = launcher["config"]
    assert helm["job_namespace"] == config["job_namespace"]
    assert [s["name"] for s in helm["env_secrets"]] == config["env_secrets"]
    assert helm["env_vars"] == config["env_vars"] and helm["image_pull_policy"] == config["image_pull_policy"]
    assert helm["run_k8s_config"] == config["run_k8s_config"]
    queued = _snake(values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"])
    assert queued["tag_concurrency_limits"] == k8s["run_coordinator"]["config"]["tag_concurrency_limits"]
    assert queued["max_concurrent_runs"] == k8s["run_coordinator"]["config"]["max_concurrent_runs"]
    [deployment] = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"][:2] == ["-m", "huracan_assets.definitions"]
    assert values["dagsterWebserver"]["service"]["type"] == "ClusterIP"  # never published directly


def test_the_dockerfile_builds_a_cuda_variant_on_request():
    text = (REPO / "docker" / "Dockerfile").read_text()
    assert re.search(r"^ARG TORCH_VARIANT=cpu$", text, re.MULTILINE)  # the CPU image stays the default
    assert 'download.pytorch.org/whl/${TORCH_VARIANT}"' in text
