"""The deployment files agree with the code: every variable it reads is documented and reaches the runs,
and the container examples share one data volume between every process that needs it."""

import re
from pathlib import Path

import yaml
from dagster._core.instance.config import dagster_instance_config

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV_PATTERNS = (
    r'EnvVar\("([A-Z][A-Z0-9_]+)"\)',
    r'environ(?:\.get)?[(\[]\s*"([A-Z][A-Z0-9_]+)"',
    r'_ENV(?:_VAR)? = "([A-Z][A-Z0-9_]+)"',
    r'_env_secrets\("([A-Z][A-Z0-9_]+)"\)',
    # a module constant naming a variable after itself: REPORTING_DATABASE_URL = "REPORTING_DATABASE_URL"
    r'^([A-Z][A-Z0-9_]*_(?:URL|DIR|SECRET|KEY|TOKEN|HOURS)) = "\1"$',
)
# Needed by a process other than a run: the image or unit sets DAGSTER_HOME; the receiver alone
# verifies webhook signatures.
NOT_FOR_RUNS = {"DAGSTER_HOME", "SHOPIFY_WEBHOOK_SECRET", "STRIPE_WEBHOOK_SECRET"}


def variables_the_code_reads() -> set[str]:
    found = set()
    for path in (ROOT / "integration_assets").rglob("*.py"):
        if "sandbox" in path.parts:
            continue  # the sandbox systems are configured by their scenario, not the environment
        text = path.read_text()
        for pattern in ENV_PATTERNS:
            found.update(re.findall(pattern, text, flags=re.MULTILINE))
    return found


def variables_in_example() -> set[str]:
    lines = (DEPLOY / "production" / "environment.example").read_text().splitlines()
    return {line.split("=", 1)[0] for line in lines if re.match(r"^[A-Z][A-Z0-9_]*=", line)}


def test_every_variable_the_code_reads_is_in_the_example_and_the_deploy_guide():
    read = variables_the_code_reads()
    assert {"STOREFRONT_ACCESS_TOKEN", "REPORTING_DATABASE_URL", "SHOPIFY_WEBHOOK_SECRET"} <= read
    assert {"INTEGRATION_ASSETS_DATA_DIR", "WAREHOUSE_INBOX", "ALERT_WEBHOOK_URL"} <= read
    assert read <= variables_in_example(), read - variables_in_example()
    guide = (ROOT / "docs" / "deploy.md").read_text()
    assert not {name for name in read if name not in guide}


def test_the_example_holds_no_secret_values():
    lines = (DEPLOY / "production" / "environment.example").read_text().splitlines()
    for line in lines:
        name, _, value = line.partition("=")
        if re.search(r"(SECRET|TOKEN|PASSWORD|_KEY)$", name):
            assert value == "", name


def test_the_production_instance_config_reads_the_documented_variables():
    text = (DEPLOY / "production" / "dagster.yaml").read_text()
    used = set(re.findall(r"\{env: ([A-Z_]+)\}", text))
    assert used == {
        "DAGSTER_PG_HOST",
        "DAGSTER_PG_PORT",
        "DAGSTER_PG_USER",
        "DAGSTER_PG_PASSWORD",
        "DAGSTER_PG_DB",
        "DAGSTER_STORAGE_DIR",
    }
    assert used <= variables_in_example()


def test_the_docker_example_is_a_valid_instance_config_that_gives_runs_everything():
    config, _ = dagster_instance_config(str(DEPLOY / "docker"))
    production, _ = dagster_instance_config(str(DEPLOY / "production"))
    for section in ("storage", "concurrency", "run_retries", "run_monitoring"):
        assert config[section] == production[section], section
    launcher = config["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_docker", "DockerRunLauncher")
    passed = set(launcher["config"]["env_vars"])
    assert variables_the_code_reads() - NOT_FOR_RUNS <= passed
    assert {"DAGSTER_PG_HOST", "DAGSTER_PG_PASSWORD"} <= passed
    assert launcher["config"]["container_kwargs"]["volumes"] == ["integration_assets_data:/data"]
    assert config["compute_logs"]["class"] == "S3ComputeLogManager"


def test_the_kubernetes_example_mounts_one_read_write_many_volume_wherever_data_is_read():
    values = yaml.safe_load((DEPLOY / "kubernetes" / "values.yaml").read_text())
    claim = yaml.safe_load((DEPLOY / "kubernetes" / "data-volume.yaml").read_text())
    assert claim["kind"] == "PersistentVolumeClaim"
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    name = claim["metadata"]["name"]
    deployment = values["dagster-user-deployments"]["deployments"][0]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    daemon = values["dagsterDaemon"]
    for where in (deployment, launcher, daemon):
        assert [v["persistentVolumeClaim"]["claimName"] for v in where["volumes"]] == [name]
        assert [m["mountPath"] for m in where["volumeMounts"]] == ["/data"]
    assert "INTEGRATION_ASSETS_DATA_DIR=/data" in launcher["envVars"]
    assert {"name": "INTEGRATION_ASSETS_DATA_DIR", "value": "/data"} in daemon["env"]
    assert daemon["runRetries"] == {
        "enabled": True,
        "maxRetries": 2,
        "retryOnAssetOrOpFailure": True,
    }
    assert values["concurrency"]["pools"]["defaultLimit"] == 1
    assert values["concurrency"]["runs"]["maxConcurrentRuns"] == 8
