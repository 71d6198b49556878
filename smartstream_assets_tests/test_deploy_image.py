"""The code location image (deploy/Dockerfile) without Docker: its install steps
(deploy/install.sh) run into a fresh virtualenv, then the code server the Helm chart runs
(deploy/helm/values.yaml) serves the code location from it and passes the chart's health
check. Docker, helm and a cluster are not available here (README, "Kubernetes")."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from smartstream_assets.local_stack import free_port

PROJECT = Path(__file__).resolve().parents[1]
DEPLOY = PROJECT / "deploy"


def test_the_dockerfile_runs_the_install_script_and_serves_the_module_the_chart_names():
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^RUN .*sh deploy/install\.sh", dockerfile, re.M)
    assert re.search(r"^COPY deploy/install\.sh ", dockerfile, re.M)
    values = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    module = deployment["dagsterApiGrpcArgs"][deployment["dagsterApiGrpcArgs"].index("--module-name") + 1]
    assert f'"-m", "{module}"' in dockerfile and f'"-p", "{deployment["port"]}"' in dockerfile
    assert values["runLauncher"]["type"] == "K8sRunLauncher" and values["postgresql"]["enabled"] is False
    # no secret in the values: passwords come from Kubernetes secrets, AWS keys from the role
    def secrets_in(node, path=""):
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and value and re.search(r"(?i)password|secret_?access|token", str(key)):
                    yield f"{path}.{key}"
                yield from secrets_in(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                if isinstance(value, dict) and re.search(r"(?i)password|secret_access|token", str(value.get("name", ""))) and value.get("value"):
                    yield f"{path}[{i}]"
                yield from secrets_in(value, f"{path}[{i}]")

    assert list(secrets_in(values)) == []
    assert "AWS_SECRET_ACCESS_KEY" not in (DEPLOY / "helm" / "values.yaml").read_text()
    # the torch the image installs is the one `make install` installs
    torch = re.search(r"^TORCH=(\S+)", (DEPLOY / "install.sh").read_text(), re.M).group(1)
    assert re.search(rf"^TORCH := {re.escape(torch)}$", (PROJECT / "Makefile").read_text(), re.M)


@pytest.mark.timeout(1200)
def test_the_install_steps_build_a_venv_that_serves_the_code_location(tmp_path):
    venv = tmp_path / "image"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    # pip's own configuration as the machine has it (indexes, where torch's CPU build lies),
    # none of this venv's
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update(PATH=f"/usr/local/bin:/usr/bin:/bin", PYTHON=str(python))
    proc = subprocess.run(["sh", str(DEPLOY / "install.sh")], env=env, capture_output=True, text=True, timeout=1100)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "code location loads" in proc.stdout
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True).stdout
    assert "torch==2.13.0+cpu" in freeze and "dagster-k8s==0.29.27" in freeze, freeze
    assert not re.search(r"(?im)^nvidia-", freeze)  # the CPU build: no CUDA libraries came along
    assert "smartstream_assets @ file" in freeze or "smartstream-assets @ file" in freeze or "smartstream_assets==0.1.0" in freeze
    # what the chart's user deployment runs, and its liveness probe
    port = free_port()
    dagster = str(venv / "bin" / "dagster")
    server = subprocess.Popen([dagster, "api", "grpc", "--module-name", "smartstream_assets.definitions", "-h", "127.0.0.1", "-p", str(port)],
                              env={"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1",
                                   "DAGSTER_HOME": str(tmp_path)}, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        deadline, health = time.monotonic() + 180, None
        while time.monotonic() < deadline and server.poll() is None:
            health = subprocess.run([dagster, "api", "grpc-health-check", "-p", str(port), "--host", "127.0.0.1"], capture_output=True, text=True)
            if health.returncode == 0:
                break
            time.sleep(1)
        assert server.poll() is None and health is not None and health.returncode == 0, (health and health.stdout + health.stderr)
    finally:
        server.terminate()  # a graceful stop; on a loaded machine it can take longer than a probe
        try:
            out = server.communicate(timeout=90)[0]
        except subprocess.TimeoutExpired:
            server.kill()
            out = server.communicate()[0]
    assert "Traceback" not in out, out[-3000:]
