"""A model that answers raw text: one MLflow pyfunc around a fitted pipeline and the
sentence encoder it was trained with.

``TextModel.predict`` takes a frame with the id column and the text column (what
``mlflow models serve`` receives as ``dataframe_split`` / ``dataframe_records``), embeds
the texts with the encoder shipped as an artifact of the model (nothing is fetched at
load time), builds the inputs with the domain's ``TextInput.inputs`` and returns the id
and one column per prediction. The fitted pipeline is a nested MLflow sklearn model
(skops, with its trusted types), so batch scoring loads it alone (``unwrap``) and
scores vectors cached in the lake without loading the encoder.

A model whose pipeline fine-tuned its encoder (``ml.fine_tune.TunedEncoder``) ships the
tuned encoder instead of the base one, and loading attaches it to the pipeline's step
(``attach_encoders``): the pipeline then encodes its text column itself, wherever it is
called, and the served model encodes each text once.
"""

from __future__ import annotations

import mlflow.pyfunc
import numpy as np
import pandas as pd

PIPELINE_ARTIFACT = "pipeline"
ENCODER_ARTIFACT = "encoder"


class TextInputError(ValueError):
    """The request lacks the text column, or a text is not a string."""


class TextModel(mlflow.pyfunc.PythonModel):
    def __init__(self, *, id_column: str, text_column: str, features: list[str], prediction_columns: list[str], inputs, method: str = "predict"):
        self.id_column = id_column
        self.text_column = text_column
        self.features = list(features)
        self.prediction_columns = list(prediction_columns)
        self.inputs = inputs
        self.method = method
        self.pipeline = None
        self._encoder_path = None

    def load_context(self, context):
        import mlflow.sklearn

        self.pipeline = mlflow.sklearn.load_model(context.artifacts[PIPELINE_ARTIFACT])
        self._encoder_path = context.artifacts[ENCODER_ARTIFACT]  # loaded on the first texts
        attach_encoders(self.pipeline, self._encoder_path)

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from .embeddings import encode, load_encoder
        from .fine_tune import tuned_steps

        frame = pd.DataFrame(model_input)
        if self.text_column not in frame.columns:
            raise TextInputError(f"the request needs a {self.text_column!r} column (got {', '.join(map(str, frame.columns)) or 'none'})")
        texts = frame[self.text_column]
        bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
        if bad:
            raise TextInputError(f"{self.text_column} must be text: rows {bad[:10]} are not strings")
        tuned = tuned_steps(self.pipeline)
        if tuned:  # the pipeline encodes with its tuned encoder (remembered: not encoded twice)
            vectors = tuned[0].embed(texts.tolist())
        else:
            vectors = encode(texts.tolist(), encoder=load_encoder(self._encoder_path)) if len(texts) else np.zeros((0, 384), np.float32)
        inputs = self.inputs(texts.tolist(), vectors)
        if self.text_column in self.features:  # the pipeline also reads the raw text (tasks.TextScores)
            inputs[self.text_column] = texts.to_numpy()
        raw = np.asarray(getattr(self.pipeline, self.method)(inputs[self.features]), dtype=np.float64)
        out = pd.DataFrame(raw.reshape(len(frame), -1), columns=self.prediction_columns)
        if self.id_column in frame.columns:
            out.insert(0, self.id_column, frame[self.id_column].to_numpy())
        return out


def log_text_model(domain, pipeline, *, example_texts: pd.DataFrame, registered_model_name: str, pip_requirements: list[str], trusted_types: list[str]):
    """Log ``pipeline`` with the encoder as one pyfunc model of the active run (named
    ``model``) and register it; returns MLflow's ``ModelInfo``."""
    import tempfile
    from pathlib import Path

    import mlflow.sklearn
    from mlflow.models import infer_signature

    from .embeddings import encoder_path
    from .fine_tune import tuned_steps

    text = domain.text_input
    model = TextModel(
        id_column=domain.id_column, text_column=text.text_column, features=domain.features,
        prediction_columns=list(domain.task.prediction_columns), inputs=text.inputs, method=domain.task.pyfunc_method,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        nested = Path(tmp) / PIPELINE_ARTIFACT
        # the pipeline's pickled state leaves its tuned encoder out (TunedEncoder.__getstate__): it is the artifact
        mlflow.sklearn.save_model(pipeline, str(nested), serialization_format="skops", skops_trusted_types=trusted_types, pip_requirements=pip_requirements)
        tuned = tuned_steps(pipeline)
        if len(tuned) > 1:
            raise ValueError(f"a text model ships one encoder; this pipeline fine-tuned {len(tuned)}")
        encoder_dir = str(encoder_path())
        if tuned:
            encoder_dir = str(Path(tmp) / ENCODER_ARTIFACT)
            tuned[0].encoder.save(encoder_dir)
        model.pipeline = pipeline  # for the signature's example only: the pickled model holds neither
        model._encoder_path = encoder_dir
        output = model.predict(None, example_texts)
        model.pipeline, model._encoder_path = None, None
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=model,
            artifacts={PIPELINE_ARTIFACT: str(nested), ENCODER_ARTIFACT: encoder_dir},
            signature=infer_signature(example_texts, output),
            input_example=example_texts,
            registered_model_name=registered_model_name,
            pip_requirements=pip_requirements,
            # the model's code (this class, the input features, the pipeline's CappedPCA)
            # ships with it: a fresh serving environment needs no smartstream install
            code_paths=[str(Path(__file__).resolve().parents[1])],
        )


def attach_encoders(pipeline, path: str) -> int:
    """Attach the encoder saved at ``path`` to the pipeline's tuned encoder steps (a
    loaded pipeline has none: the pickled state leaves it out); returns how many."""
    from .embeddings import load_encoder
    from .fine_tune import tuned_steps

    steps = tuned_steps(pipeline)
    for step in steps:
        step.attach(load_encoder(str(path)))
    return len(steps)


def unwrap(pyfunc_model):
    """The fitted pipeline inside a loaded ``TextModel``."""
    inner = pyfunc_model.unwrap_python_model()
    if not isinstance(inner, TextModel) or inner.pipeline is None:
        raise TypeError(f"not a smartstream text model: {type(inner).__name__}")
    return inner.pipeline
