"""Kubernetes through dagster-k8s: the executor's configuration from the settings, the training step's GPU tags, and
the Jobs that executor builds for an asset's steps, printed without a cluster (``huracan k8s-manifest``).

* :func:`executor_config`: the ``k8s_job_executor`` config (image, namespace, the Secrets the pods read their
  environment from, every step's CPU and memory requests, pods at once, GPU steps at once by the
  ``huracan/accelerator`` tag).
* :func:`gpu_tags`: the ``dagster-k8s/config`` tag of a step that wants a GPU: the ``nvidia.com/gpu`` limit, the GPU
  nodes' selector and tolerations. Only the training step carries it (``defs/models.training_tags``).
* :func:`step_jobs`: for an asset, each of its steps' Kubernetes Job as the executor would submit it. It uses
  dagster-k8s's own code, the path of ``K8sStepHandler.launch_step``: the executor's ``K8sContainerContext``
  merged with the step's tags (``get_user_defined_k8s_config``), then ``construct_dagster_k8s_job``. Only what a
  live run adds is a placeholder: the run id (``RUN_ID``) and the step's command arguments.
"""

from __future__ import annotations

from typing import Any

from huracan_assets.names import ACCELERATOR_TAG

K8S_CONFIG_TAG = "dagster-k8s/config"
PLACEHOLDER_RUN_ID = "00000000-0000-0000-0000-000000000000"


def gpu_tags(settings) -> dict[str, Any]:
    """The ``dagster-k8s/config`` tag of a step that wants a GPU (module docstring)."""
    k = settings.kubernetes
    gpus = str(k.gpus_per_step)
    resources = {"limits": {"nvidia.com/gpu": gpus}, "requests": {"nvidia.com/gpu": gpus}}
    pod = {"node_selector": dict(k.gpu_node_selector), "tolerations": [dict(t) for t in k.gpu_tolerations]}
    return {K8S_CONFIG_TAG: {"container_config": {"resources": resources}, "pod_spec_config": pod}}


def executor_config(settings) -> dict[str, Any]:
    """The ``k8s_job_executor``'s configuration (module docstring)."""
    k = settings.kubernetes
    config: dict[str, Any] = {
        "job_image": k.image,
        "image_pull_policy": k.image_pull_policy,
        "job_namespace": k.namespace,
        "env_secrets": list(k.env_secrets),
        "max_concurrent": k.max_concurrent,
        "tag_concurrency_limits": [{"key": ACCELERATOR_TAG, "value": "gpu", "limit": k.gpu_steps}],
        "step_k8s_config": {
            "container_config": {"resources": {"requests": {"cpu": k.step_cpu, "memory": k.step_memory}}}
        },
        "load_incluster_config": True,
    }
    if k.service_account:
        config["service_account_name"] = k.service_account
    return config


def k8s_executor(settings):
    """dagster-k8s's ``k8s_job_executor`` configured from the settings."""
    from dagster_k8s import k8s_job_executor

    return k8s_job_executor.configured(executor_config(settings), name="huracan_k8s")


def _container_context(settings, step_tags: dict[str, Any]):
    """The executor's container context merged with the step's tags, as ``K8sStepHandler`` merges them."""
    from dagster_k8s.container_context import K8sContainerContext
    from dagster_k8s.job import UserDefinedDagsterK8sConfig, get_user_defined_k8s_config

    cfg = executor_config(settings)
    executor_context = K8sContainerContext(
        image_pull_policy=cfg["image_pull_policy"],
        service_account_name=cfg.get("service_account_name"),
        env_secrets=cfg["env_secrets"],
        namespace=cfg["job_namespace"],
        run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(cfg["step_k8s_config"]),
    )
    tags = {k: v for k, v in step_tags.items() if k == K8S_CONFIG_TAG}
    return executor_context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))


def step_jobs(settings, asset: str, job_name: str = "symbol_day_job") -> list[tuple[str, dict[str, Any]]]:
    """``(step, Job manifest)`` for each step of ``asset`` in ``job_name`` (module docstring)."""
    import kubernetes
    from dagster import AssetKey
    from dagster._core.definitions.graph_definition import GraphDefinition
    from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_k8s_job_name

    from huracan_assets.defs.build import build_definitions

    k = settings.kubernetes
    defs = build_definitions(settings)
    if AssetKey(asset) not in defs.resolve_asset_graph().get_all_asset_keys():
        raise KeyError(asset)
    node = defs.resolve_assets_def(AssetKey(asset)).node_def
    if isinstance(node, GraphDefinition):
        steps = [(f"{node.name}.{op.name}", op) for op in node.iterate_op_defs()]
    else:
        steps = [(node.name, node)]
    job_config = DagsterK8sJobConfig(
        job_image=k.image,
        dagster_home=k.dagster_home,
        instance_config_map=k.instance_config_map,
        postgres_password_secret=k.postgres_password_secret,
    )
    out = []
    for step_key, op in steps:
        context = _container_context(settings, dict(op.tags))
        name = f"dagster-step-{get_k8s_job_name(PLACEHOLDER_RUN_ID, step_key)}"
        job = construct_dagster_k8s_job(
            job_config=job_config,
            args=["dagster", "api", "execute_step"],
            job_name=name,
            pod_name=name,
            component="step_worker",
            user_defined_k8s_config=context.run_k8s_config,
            labels={"dagster/job": job_name, "dagster/op": step_key, "dagster/run-id": PLACEHOLDER_RUN_ID},
            env_vars=[
                {"name": "DAGSTER_RUN_JOB_NAME", "value": job_name},
                {"name": "DAGSTER_RUN_STEP_KEY", "value": step_key},
            ],
        )
        manifest = kubernetes.client.ApiClient().sanitize_for_serialization(job)
        manifest["metadata"]["namespace"] = context.namespace
        out.append((step_key, manifest))
    return out


def requests_gpu(manifest: dict[str, Any]) -> bool:
    """Whether a Job's containers ask for ``nvidia.com/gpu``."""
    containers = manifest["spec"]["template"]["spec"]["containers"]
    return any(
        "nvidia.com/gpu" in ((c.get("resources") or {}).get(part) or {})
        for c in containers
        for part in ("limits", "requests")
    )
