"""MLflow: a run per training, the model registry, aliases, and the drift baseline.

Conventions every domain shares:
- one experiment per model, ``smartstream-<model>``; one run per candidate with a
  nested run per search trial;
- the fitted pipeline (preprocessing + model) is logged with its signature, an
  input example and explicit pip requirements, and registered as a new version;
- aliases, not stages: ``challenger`` is the newest candidate, ``champion`` serves;
- the candidate's holdout and a training sample are artifacts of its run
  (``data/``), so the gate can score the champion on the candidate's holdout;
- at promotion the reference data and the promoted model's predictions on it are
  logged to that version's run (``reference/``) and the version is tagged
  ``smartstream.reference``: the drift baseline travels with the model.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata as importlib_metadata
from pathlib import Path

import pandas as pd

from ..lake import PROJECT_ROOT

CHAMPION, CHALLENGER = "champion", "challenger"
DEFAULT_TRACKING_URI = f"sqlite:///{PROJECT_ROOT / '.smartstream' / 'mlflow.db'}"
DEFAULT_ARTIFACT_ROOT = (PROJECT_ROOT / ".smartstream" / "mlartifacts").as_uri()
DEFAULT_UI_URL = "http://127.0.0.1:5000"  # where `mlflow ui` / `make mlflow-ui` serves
# What a served model needs (mlflow models serve installs these in a fresh env).
_MLFLOW_URI_VARIABLES = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
MODEL_REQUIREMENTS = ("mlflow", "scikit-learn", "xgboost-cpu", "pandas", "numpy", "skops", "scipy")
# a text model also embeds (torch's CPU build must be installed before sentence-transformers)
TEXT_MODEL_REQUIREMENTS = (*MODEL_REQUIREMENTS, "torch", "sentence-transformers", "transformers")


@dataclass(frozen=True)
class LoggedCandidate:
    run_id: str
    version: str
    model_uri: str
    run_url: str
    evaluation: dict | None = None  # the evaluation.json logged to the run


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str
    tags: dict[str, str]


class Registry:
    """MLflow tracking and registry at explicit URIs (never the process-global default)."""

    def __init__(self, tracking_uri: str = "", registry_uri: str = "", ui_url: str = "", artifact_root: str = ""):
        # MLflow draws a progress bar for every artifact download into the run logs
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.tracking_uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
        self.registry_uri = registry_uri or os.environ.get("MLFLOW_REGISTRY_URI") or self.tracking_uri
        remote = self.tracking_uri.startswith(("http://", "https://"))
        self.ui_url = (ui_url or (self.tracking_uri if remote else DEFAULT_UI_URL)).rstrip("/")
        # A server decides where artifacts go; a local store puts them beside itself.
        self.artifact_root = artifact_root or ("" if remote else _artifact_root_for(self.tracking_uri))

    @property
    def client(self):
        from mlflow import MlflowClient

        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.registry_uri)

    def experiment_id(self, model: str) -> str:
        name = f"smartstream-{model}"
        found = self.client.get_experiment_by_name(name)
        if found is not None:
            return found.experiment_id
        location = f"{self.artifact_root}/{name}" if self.artifact_root else None
        return self.client.create_experiment(name, artifact_location=location)

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    # ------------------------------------------------------------------ training

    def log_candidate(self, domain, candidate, fairness: dict, settings, plots: dict[str, bytes], tags: dict | None = None) -> LoggedCandidate:
        """Log a trained ``training.Candidate`` as a run, register it, alias it challenger,
        and log its ``evaluation.json`` (``LoggedCandidate.evaluation``)."""
        import mlflow
        from mlflow.models import infer_signature

        from .evaluation import EVALUATION_ARTIFACT, evaluation_document

        task = candidate.task
        experiment_id = self.experiment_id(domain.model_id)
        features = domain.features
        example = candidate.holdout[features].head(5)
        cv_metric = f"cv_{task.objective}"
        with self._fluent(), mlflow.start_run(experiment_id=experiment_id, run_name=f"{domain.model_id} {_now():%Y-%m-%d %H:%M}", tags=tags) as run:
            for trial in candidate.trials:
                # nested runs need the experiment too, else they land in "Default"
                with mlflow.start_run(experiment_id=experiment_id, run_name=f"trial {trial.number} {trial.estimator}", nested=True):
                    mlflow.log_params({"estimator": trial.estimator, **trial.params})
                    mlflow.set_tag("state", trial.state)
                    if trial.cv_score is not None:
                        mlflow.log_metric(cv_metric, trial.cv_score)
            mlflow.log_params({"estimator": candidate.estimator, **candidate.params})
            mlflow.log_params(
                {
                    "task": task.kind,
                    "task.objective": task.objective,
                    "search.trials": settings.trials,
                    "search.sampler": settings.sampler,
                    "search.pruner": settings.pruner,
                    "search.estimators": ",".join(settings.estimators),
                    "search.folds": settings.folds,
                    "split": task.split.kind,
                    "split.test_size": settings.test_size,
                    "split.seed": settings.seed,
                    "rows.train": len(candidate.train),
                    "rows.holdout": len(candidate.holdout),
                }
            )
            mlflow.log_metrics({**_finite_metrics(candidate.metrics), cv_metric: candidate.cv_score})
            tuned = candidate.representation
            if tuned.get("fine_tuned"):  # the encoder fine-tuned before the search (it ships with the model)
                mlflow.log_params({f"fine_tune.{k}": tuned[k] for k in ("epochs", "rows", "batch_size", "encoder_lr", "head_lr")})
                mlflow.log_metric("fine_tune.seconds", tuned["seconds"])
                for epoch, loss in enumerate(tuned["losses"]):
                    mlflow.log_metric("fine_tune.loss", loss, step=epoch + 1)
            for name, values in candidate.baselines.items():
                mlflow.log_metrics({f"baseline.{name}.{k}": v for k, v in _finite_metrics(values).items()})
            for facet, result in fairness.items():
                mlflow.log_metrics({f"fairness.{facet}.{k}": v for k, v in _finite_metrics({**result.measures, "gated": result.gated}).items()})
            mlflow.log_dict(candidate.report, "classification_report.json" if task.kind == "binary" else "report.json")
            mlflow.log_dict({f: r.to_json() for f, r in fairness.items()}, "fairness.json")
            mlflow.log_dict(candidate.feature_importance, "feature_importance.json")
            for name, png in plots.items():
                self.log_bytes(run.info.run_id, png, f"plots/{name}.png")
            self.log_frame(run.info.run_id, candidate.holdout, "data/holdout.parquet")
            # held out: the rows as they arrive, copies included (the unique holdout would under-weigh
            # a text that recurs, e.g. "A real gem.", and read as drift on every ordinary hour)
            pool = candidate.arrival_sample if domain.reference_from_holdout else candidate.train
            pool = pool if domain.reference_window is None else domain.reference_window(pool)
            self.log_frame(run.info.run_id, pool.sample(min(len(pool), domain.reference_rows), random_state=0), "data/train_sample.parquet")
            if domain.text_input is not None:  # one pyfunc that answers raw text, its encoder inside
                from .text_model import log_text_model

                texts = candidate.holdout[[domain.id_column, domain.text_input.text_column]].head(5).reset_index(drop=True)
                info = log_text_model(
                    domain, candidate.pipeline, example_texts=texts, registered_model_name=domain.registered_model,
                    pip_requirements=pinned_requirements(TEXT_MODEL_REQUIREMENTS), trusted_types=_trusted_types(candidate.pipeline),
                )  # fmt: skip
            else:
                info = self._log_sklearn(domain, candidate, example)
            run_id = run.info.run_id
        version = str(info.registered_model_version)
        model_uri = f"models:/{domain.registered_model}/{version}"
        evaluation = evaluation_document(domain, candidate, fairness, version=version, run_id=run_id, model_uri=model_uri)
        client = self.client
        client.log_dict(run_id, evaluation, EVALUATION_ARTIFACT)
        client.set_registered_model_alias(domain.registered_model, CHALLENGER, version)
        client.set_model_version_tag(domain.registered_model, version, "smartstream.domain", domain.name)
        client.set_model_version_tag(domain.registered_model, version, "smartstream.task", task.kind)
        client.set_model_version_tag(domain.registered_model, version, "smartstream.estimator", candidate.estimator)
        return LoggedCandidate(run_id, version, model_uri, self.run_url(experiment_id, run_id), evaluation)

    def _log_sklearn(self, domain, candidate, example):
        import mlflow
        from mlflow.models import infer_signature

        task = candidate.task
        return mlflow.sklearn.log_model(
            candidate.pipeline,
            name="model",
            signature=infer_signature(example, getattr(candidate.pipeline, task.pyfunc_method)(example)),
            input_example=example,
            registered_model_name=domain.registered_model,
            pip_requirements=pinned_requirements(),
            skops_trusted_types=_trusted_types(candidate.pipeline),
            # served and loaded as pyfunc, the model answers what the task serves
            # (class probabilities for a classifier, values for a regressor)
            pyfunc_predict_fn=task.pyfunc_method,
        )

    def evaluation(self, run_id: str) -> dict:
        """The ``evaluation.json`` a candidate's run logged."""
        from .evaluation import EVALUATION_ARTIFACT

        return self.load_dict(run_id, EVALUATION_ARTIFACT)

    # ------------------------------------------------------------------ registry

    def version(self, name: str, alias: str) -> VersionInfo | None:
        """The version behind ``alias``, or None when the alias (or model) does not exist."""
        from mlflow.exceptions import MlflowException

        try:
            mv = self.client.get_model_version_by_alias(name, alias)
        except MlflowException:
            return None
        return VersionInfo(str(mv.version), mv.run_id, dict(mv.tags))

    def get_version(self, name: str, version: str) -> VersionInfo:
        mv = self.client.get_model_version(name, str(version))
        return VersionInfo(str(mv.version), mv.run_id, dict(mv.tags))

    def versions(self, name: str) -> list[VersionInfo]:
        """Every version of ``name``, newest first; empty when the model does not exist."""
        found = self.client.search_model_versions(filter_string=f"name = '{name}'")
        infos = [VersionInfo(str(mv.version), mv.run_id, dict(mv.tags)) for mv in found]
        return sorted(infos, key=lambda v: int(v.version), reverse=True)

    def load_pipeline(self, name: str, version: str):
        """The fitted sklearn pipeline of a version (of a text model: the pipeline inside
        it, which scores embeddings; the encoder is not loaded)."""
        import mlflow.sklearn
        from mlflow.models import get_model_info

        uri = f"models:/{name}/{version}"
        with self._fluent():
            if "sklearn" in get_model_info(uri).flavors:
                return mlflow.sklearn.load_model(uri)
            import mlflow.pyfunc

            from .text_model import unwrap

            return unwrap(mlflow.pyfunc.load_model(uri))

    def load_pyfunc(self, name: str, version: str):
        """A version as MLflow serves it (``mlflow models serve`` loads the same)."""
        import mlflow.pyfunc

        with self._fluent():
            return mlflow.pyfunc.load_model(f"models:/{name}/{version}")

    def tag_version(self, name: str, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(name, str(version), key, str(value))

    def promote(self, name: str, version: str, reference: pd.DataFrame, reference_predictions: pd.DataFrame, tags: dict | None = None) -> None:
        """Make ``version`` the champion, with its drift baseline logged to its run."""
        info = self.get_version(name, version)
        self.log_frame(info.run_id, reference, "reference/features.parquet")
        self.log_frame(info.run_id, reference_predictions, "reference/predictions.parquet")
        self.tag_version(
            name,
            version,
            {"smartstream.reference": f"runs:/{info.run_id}/reference", "smartstream.promoted_at": _now().isoformat(), **(tags or {})},
        )
        self.client.set_registered_model_alias(name, CHAMPION, str(version))

    def reference(self, name: str, alias: str = CHAMPION, version: str | None = None) -> tuple[VersionInfo, pd.DataFrame, pd.DataFrame]:
        """The drift baseline stored with ``version``, else with the version behind ``alias``."""
        if version is not None:
            from mlflow.exceptions import MlflowException

            try:
                info = self.get_version(name, version)
            except MlflowException:
                raise LookupError(f"{name} has no version {version}") from None
        else:
            info = self.version(name, alias)
        if info is None:
            raise LookupError(f"{name} has no {alias}: promote a model first (the champion asset)")
        if "smartstream.reference" not in info.tags:
            raise LookupError(f"{name} v{info.version} has no reference data (it was not promoted by smartstream)")
        return (
            info,
            self.load_frame(info.run_id, "reference/features.parquet"),
            self.load_frame(info.run_id, "reference/predictions.parquet"),
        )

    # ------------------------------------------------------------------ artifacts

    def log_frame(self, run_id: str, frame: pd.DataFrame, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            frame.to_parquet(local, index=False)
            self.client.log_artifact(run_id, str(local), artifact_path=str(Path(path).parent))

    def log_bytes(self, run_id: str, data: bytes, path: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / Path(path).name
            local.write_bytes(data)
            self.client.log_artifact(run_id, str(local), artifact_path=str(Path(path).parent))

    def load_frame(self, run_id: str, path: str) -> pd.DataFrame:
        import mlflow.artifacts

        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=path, dst_path=tmp, tracking_uri=self.tracking_uri)
            return pd.read_parquet(local)

    def load_dict(self, run_id: str, path: str) -> dict:
        import mlflow.artifacts

        with self._fluent():  # runs:/ URIs resolve against the fluent tracking URI
            return mlflow.artifacts.load_dict(f"runs:/{run_id}/{path}")

    @contextmanager
    def _fluent(self):
        """MLflow's fluent API (start_run, log_model, load_model, runs:/ URIs) pointed at
        this registry for the block, and the process-wide settings restored after:
        ``mlflow.set_tracking_uri`` also sets $MLFLOW_TRACKING_URI (and the registry
        likewise), which would send every later ``Registry()`` to this store."""
        import mlflow

        saved = {name: os.environ.get(name) for name in _MLFLOW_URI_VARIABLES}
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.registry_uri)
        try:
            yield
        finally:
            mlflow.set_tracking_uri(saved["MLFLOW_TRACKING_URI"])
            mlflow.set_registry_uri(saved["MLFLOW_REGISTRY_URI"])
            for name, value in saved.items():  # set_registry_uri(None) leaves the variable
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _finite_metrics(values: dict) -> dict[str, float]:
    """MLflow stores NaN, but a NaN metric reads as a number in its UI: leave it out."""
    import math

    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(float(v))}


def pinned_requirements(packages=MODEL_REQUIREMENTS) -> list[str]:
    """The installed versions of what a served model imports (not the whole venv:
    MLflow's inference would drag in torch and pytest)."""
    out = []
    for package in packages:
        try:
            out.append(f"{package}=={importlib_metadata.version(package)}")
        except importlib_metadata.PackageNotFoundError:
            continue
    return out


def _trusted_types(pipeline) -> list[str]:
    """skops refuses types it does not know; these are the ones of a model we just fitted."""
    import skops.io

    return skops.io.get_untrusted_types(data=skops.io.dumps(pipeline))


def _artifact_root_for(tracking_uri: str) -> str:
    """A sqlite or file store keeps its artifacts beside it (MLflow's own default is ./mlruns
    of whatever the current directory is)."""
    if tracking_uri.startswith("sqlite:///"):
        return (Path(tracking_uri[len("sqlite:///") :]).parent / "mlartifacts").as_uri()
    if tracking_uri.startswith("file:"):
        return tracking_uri.rstrip("/") + "-artifacts"
    return Path(tracking_uri).resolve().with_name("mlartifacts").as_uri()


def _now() -> datetime:
    return datetime.now(timezone.utc)
