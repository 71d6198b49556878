"""Run config of the ML assets: what the UI's launchpad shows for each."""

import dagster as dg
from pydantic import Field, field_validator


class CandidateConfig(dg.Config):
    """The hyperparameter search; the default budget keeps `make demo` quick. The three
    strategies: TPE (sampler tpe, pruner none), random (random, none), Hyperband (tpe,
    hyperband: in Optuna Hyperband is a pruner, run with a sampler)."""

    trials: int = Field(default=0, ge=0, description="Optuna trials; 0: the domain's budget (10; reviews 4)")
    estimators: list[str] = Field(default=[], description="random_forest, xgboost; empty: the domain's (co2: xgboost)")
    strategy: str = Field(
        default="", description="tpe | bayesian | random | hyperband in one word; set, it replaces sampler and pruner"
    )
    sampler: str = Field(default="tpe", description="tpe (Optuna's Bayesian sampler; alias bayesian) or random")
    pruner: str = Field(
        default="none",
        description="none or hyperband (its resource: the cross-validation folds of a random split; on a time "
        "split the latest 1/4, 1/2, all of the training window)",
    )
    folds: int = Field(default=3, description="stratified folds of the training split")
    test_size: float = Field(default=0.2, description="holdout share (stratified)")
    seed: int = Field(default=42, description="split, folds, sampler and models")
    fine_tune_epochs: int = Field(
        default=-1, ge=-1, description="a domain that fine-tunes its encoder (reviews): epochs; -1: the domain's (2), 0: the frozen encoder"
    )
    fine_tune_rows: int = Field(default=0, ge=0, description="at most this many training rows fine-tune the encoder; 0: the domain's (all)")

    @field_validator("sampler")
    @classmethod
    def _known_sampler(cls, value: str) -> str:
        from ..ml.training import canonical_sampler

        return canonical_sampler(value)  # the error names the allowed values

    @field_validator("strategy")
    @classmethod
    def _known_strategy(cls, value: str) -> str:
        from ..ml.training import STRATEGIES

        if value.strip() and value.strip().lower() not in STRATEGIES:
            raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)} or empty (got {value!r})")
        return value.strip().lower()

    @field_validator("pruner")
    @classmethod
    def _known_pruner(cls, value: str) -> str:
        from ..ml.training import canonical_pruner

        return canonical_pruner(value)


class GateConfig(dg.Config):
    """Overrides of the domain's quality bar; unset fields keep the domain's."""

    thresholds: dict[str, float] = Field(
        default={}, description="metric -> threshold, replacing the bar's (its direction stays), e.g. {\"roc_auc\": 0.8}"
    )
    max_fairness: float | None = Field(default=None, description="the worst gated fairness value allowed")
    requires_approval: bool | None = None


class ApprovalConfig(dg.Config):
    # no default: a plain "Materialize" in the UI opens the config form to say who approves
    approved_by: str = Field(description="who approves (required): recorded on the model version")
    version: str = Field(default="", description="the version to approve; empty: the challenger")
    note: str = Field(default="", description="why, for the record")

