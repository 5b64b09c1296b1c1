"""The risk model: training, the review threshold, saving, and loading it in the scorer.

``train(pairs)`` fits a scikit-learn ``HistGradientBoostingClassifier`` (class weights balanced:
abuse is a minority) on the features of simulated shows (``offline.feature_rows``, each order
scored at a delay drawn from ``offline.SCORING_DELAYS_MS``) plus any reviewed history (feature
dicts the scorer stored, with the merchant's verdict). Shows, not orders, are split into
training and validation: orders of one show share rings and IPs, so a split inside a show would
grade the model on rings it has already seen. On the validation shows the **review threshold**
is the lowest score at which at most ``MAX_GENUINE_FLAGGED`` (0.3%) of genuine orders, in every
evaluation view (scored at placing, 5 s later, after the show) and in every genuine group (at
most ``MAX_GROUP_FLAGGED``, 0.3% too), score at or above it.

``RiskModel.score(features)`` is 0-100 (the model's abuse probability x 100), ``flags(score)``
compares with the threshold. ``save(model, directory)`` writes ``fraud-model-<UTC>.joblib`` and
atomically replaces ``model.joblib`` beside it; ``load_model()`` reads
``settings.FRAUD_MODEL_PATH``, else the default shipped in ``apps/fraud/default_model/``, refuses
a file whose feature names are not today's ``FEATURE_NAMES`` (a model trained before a feature
changed would read the wrong columns), and keeps the result per process (``reload_model()``
forgets it).
"""

from __future__ import annotations

import logging
import os
import random
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import sklearn
from django.conf import settings
from sklearn.ensemble import HistGradientBoostingClassifier
from threadpoolctl import ThreadpoolController

from .facts import OrderFacts
from .features import FEATURE_NAMES
from .offline import EVALUATION_VIEWS, SCORING_DELAYS_MS, ViewReport, feature_rows
from .simulation import GENUINE, Label

__all__ = [
    "DEFAULT_MODEL_PATH",
    "MAX_GENUINE_FLAGGED",
    "RiskModel",
    "load_model",
    "reload_model",
    "save",
    "train",
]

logger = logging.getLogger(__name__)

DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "default_model" / "model.joblib"
MODEL_FILE = "model.joblib"
FORMAT = 1  # of the saved payload
MAX_GENUINE_FLAGGED = 0.003  # of genuine validation orders at or over the threshold, overall
# ... in any one genuine group with enough orders to tell. Tighter than the 0.5% a group may
# reach on unseen shows: a threshold picked on a few validation shows lands a little lower on
# others, and households (a flat shared by 2-4 accounts) sit closest to a small ring.
MAX_GROUP_FLAGGED = 0.003

Row = tuple[Mapping[str, float], Label]

_controller: ThreadpoolController | None = None


def _one_thread() -> Any:
    """A context in which OpenMP (the gradient boosting's threads) runs on one thread. On a
    small or busy machine its threads spin against each other and the web workers: fitting ran
    6x slower with two threads than with one on the 2-core box, and one order's prediction
    took 20 ms instead of 4. The controller is built once (finding the libraries is slow)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="openmp")


@dataclass
class RiskModel:
    version: str  # the UTC time it was trained, e.g. 20250618T120000Z
    feature_names: tuple[str, ...]
    threshold: float  # a score at or above it is held for review
    metrics: dict[str, Any]  # on the validation shows: threshold choice, recall, genuine flagged
    estimator: HistGradientBoostingClassifier
    info: dict[str, Any] = field(default_factory=dict)  # training seeds, sizes, versions, time taken

    def score(self, features: Mapping[str, float]) -> float:
        """0-100 for one order's ``order_features`` dict."""
        return float(self.score_many([features])[0])

    def score_many(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        if not rows:
            return np.zeros(0)
        with _one_thread():
            return 100.0 * self.estimator.predict_proba(_matrix(rows, self.feature_names))[:, 1]

    def flags(self, score: float) -> bool:
        return score >= self.threshold


def _matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    # A name missing from a row (a stored history row from before a feature existed) is NaN,
    # which the gradient boosting treats as missing rather than as a value.
    return np.array([[row.get(n, np.nan) for n in names] for row in rows], dtype=np.float64)


# --- training ----------------------------------------------------------------------------------


def train(
    facts_and_labels: Sequence[tuple[OrderFacts, Label]],
    *,
    history: Sequence[Row] = (),
    validation_share: float = 0.25,
    seed: int = 0,
    max_iter: int = 300,
) -> RiskModel:
    """A model over simulated orders (grouped into shows by ``OrderFacts.show``) and reviewed
    ``history`` rows (features, label), with its threshold chosen on held-back shows (see the
    module docstring)."""
    started = time.monotonic()
    rng = random.Random(f"fraud-train:{seed}")
    shows = sorted({f.show for f, _ in facts_and_labels})
    n_val = max(1, round(len(shows) * validation_share)) if len(shows) > 1 else 0
    val_shows = set(rng.sample(shows, n_val))
    train_pairs = [p for p in facts_and_labels if p[0].show not in val_shows]
    val_pairs = [p for p in facts_and_labels if p[0].show in val_shows]
    history = list(history)
    rng.shuffle(history)
    n_hist_val = round(len(history) * validation_share)
    train_rows: list[Row] = list(feature_rows(train_pairs, delays=SCORING_DELAYS_MS, rng=rng))
    train_rows += history[n_hist_val:]
    if not train_rows or not val_pairs:
        raise ValueError("training needs orders of at least two shows")
    y = np.array([label.kind != GENUINE for _, label in train_rows])
    if y.all() or not y.any():
        raise ValueError("training needs both genuine and abusive orders")
    estimator = HistGradientBoostingClassifier(
        max_iter=max_iter,
        learning_rate=0.08,
        max_leaf_nodes=31,
        min_samples_leaf=40,
        l2_regularization=1.0,
        class_weight="balanced",
        early_stopping=False,
        random_state=seed,
    )
    with _one_thread():
        estimator.fit(_matrix([f for f, _ in train_rows], FEATURE_NAMES), y)
    model = RiskModel(
        version=datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
        feature_names=FEATURE_NAMES,
        threshold=100.0,
        metrics={},
        estimator=estimator,
    )
    views: dict[str, list[Row]] = {
        name: list(feature_rows(val_pairs, delay_ms=delay)) for name, delay in EVALUATION_VIEWS.items()
    }
    if history[:n_hist_val]:
        views["reviewed history"] = history[:n_hist_val]
    scores = {name: model.score_many([f for f, _ in rows]) for name, rows in views.items()}
    model.threshold = choose_threshold(
        {name: list(zip(scores[name], (label for _, label in rows), strict=True)) for name, rows in views.items()}
    )
    model.metrics = {"validation": {name: _view_metrics(scores[name], rows, model) for name, rows in views.items()}}
    model.info = {
        "sklearn": sklearn.__version__,
        "train_shows": sorted(set(shows) - val_shows),
        "validation_shows": sorted(val_shows),
        "train_rows": len(train_rows),
        "history_rows": len(history),
        "train_seconds": round(time.monotonic() - started, 1),
    }
    return model


def choose_threshold(
    scored: Mapping[str, Sequence[tuple[float, Label]]],
    *,
    max_genuine: float = MAX_GENUINE_FLAGGED,
    max_group: float = MAX_GROUP_FLAGGED,
) -> float:
    """The lowest score (to 0.01) flagging at most ``max_genuine`` of the genuine orders in
    every view and ``max_group`` of any genuine group with 200 orders or more there."""
    threshold = 0.0
    for rows in scored.values():
        groups: dict[str, list[float]] = {}
        for score, label in rows:
            if label.kind == GENUINE:
                groups.setdefault("", []).append(float(score))
                groups.setdefault(label.group, []).append(float(score))
        for name, values in groups.items():
            if name and len(values) < 200:
                continue  # too few to bound a rate of 0.5%
            share = max_genuine if not name else max_group
            threshold = max(threshold, _lowest_threshold(values, share))
    return round(threshold, 2)


def _lowest_threshold(genuine_scores: list[float], share: float) -> float:
    values = sorted(genuine_scores, reverse=True)
    allowed = int(share * len(values))  # this many may be flagged
    if allowed >= len(values):
        return 0.0
    # Flag only scores strictly above the (allowed+1)-th highest: a hair above it.
    return min(100.0, np.nextafter(values[allowed], np.inf) + 0.005)


def _view_metrics(scores: np.ndarray, rows: Sequence[Row], model: RiskModel) -> dict[str, Any]:
    view = ViewReport()
    for (_, label), score in zip(rows, scores, strict=True):
        view.add(label, model.flags(float(score)))
    return view.as_dict()


# --- saving and loading ------------------------------------------------------------------------


def _payload(model: RiskModel) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": model.version,
        "feature_names": list(model.feature_names),
        "threshold": model.threshold,
        "metrics": model.metrics,
        "info": model.info,
        "estimator": model.estimator,
    }


def _atomic_dump(payload: Mapping[str, Any], path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp's 0600 would hide it from a server running as another user
        with os.fdopen(fd, "wb") as fh:
            joblib.dump(dict(payload), fh, compress=3)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(model: RiskModel, directory: Path | str, *, versioned: bool = True, filename: str = MODEL_FILE) -> Path:
    """Write ``model`` to ``directory``: ``fraud-model-<version>.joblib`` (unless not
    ``versioned``) and ``filename`` (``model.joblib``), the latter replaced atomically (a scorer
    loading it meanwhile reads the old file or the new one, never half of one). Returns the path
    of ``filename``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = _payload(model)
    if versioned:
        _atomic_dump(payload, directory / f"fraud-model-{model.version}.joblib")
    target = directory / filename
    _atomic_dump(payload, target)
    return target


def read_model(path: Path | str) -> RiskModel:
    """The model saved at ``path``; ValueError when it is not one or its features are stale."""
    payload = joblib.load(path)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a fraud model file of format {FORMAT}")
    names = tuple(payload["feature_names"])
    if names != FEATURE_NAMES:
        missing = sorted(set(FEATURE_NAMES) - set(names))
        extra = sorted(set(names) - set(FEATURE_NAMES))
        raise ValueError(
            f"{path}: stale model {payload.get('version')}: its features differ from FEATURE_NAMES "
            f"(missing {missing}, unknown {extra}, or another order); retrain it (manage.py train_fraud_model)"
        )
    trained_with = payload.get("info", {}).get("sklearn")
    if trained_with and trained_with != sklearn.__version__:
        logger.warning(
            "fraud model %s was trained with scikit-learn %s, running %s",
            payload["version"],
            trained_with,
            sklearn.__version__,
        )
    return RiskModel(
        version=str(payload["version"]),
        feature_names=names,
        threshold=float(payload["threshold"]),
        metrics=dict(payload.get("metrics") or {}),
        estimator=payload["estimator"],
        info=dict(payload.get("info") or {}),
    )


def configured_model_path() -> Path:
    return Path(getattr(settings, "FRAUD_MODEL_PATH", None) or Path(settings.BASE_DIR) / "var" / "fraud" / MODEL_FILE)


_UNSET = object()
_cached: Any = _UNSET
_lock = threading.Lock()


def load_model() -> RiskModel | None:
    """The model the scorer uses: ``settings.FRAUD_MODEL_PATH`` if it loads, else the shipped
    default, else None (the rules alone decide); each refusal is logged. Loaded once per
    process; ``reload_model()`` after training a new one."""
    global _cached
    if _cached is _UNSET:
        with _lock:
            if _cached is _UNSET:
                _cached = _load()
    return _cached


def reload_model() -> RiskModel | None:
    global _cached
    with _lock:
        _cached = _load()
    return _cached


def _load() -> RiskModel | None:
    configured = configured_model_path()
    for path in dict.fromkeys((configured, DEFAULT_MODEL_PATH)):
        if not path.exists():
            if path == configured:
                logger.info("fraud model: %s not found, trying the shipped default", path)
            else:
                logger.error("fraud model: the shipped default %s is missing", path)
            continue
        try:
            model = read_model(path)
        except Exception:  # noqa: BLE001 -- any unreadable file means "no model from here", not a crash
            logger.exception("fraud model: %s refused", path)
            continue
        logger.info("fraud model %s loaded from %s (threshold %.2f)", model.version, path, model.threshold)
        return model
    logger.error("fraud model: none loaded; the rules alone decide")
    return None


def history_rows(records: Iterable[tuple[Mapping[str, Any], str]]) -> list[Row]:
    """Reviewed orders as training rows: ``(features, review_outcome)`` with the outcome
    ``"approved"`` (genuine) or ``"rejected"`` (abuse); other outcomes and empty features are
    skipped."""
    out: list[Row] = []
    for features, outcome in records:
        if not features or outcome not in ("approved", "rejected"):
            continue
        label = Label(GENUINE, "reviewed", "", "") if outcome == "approved" else Label("reviewed", "reviewed", "", "")
        out.append(({k: float(v) for k, v in features.items() if isinstance(v, int | float)}, label))
    return out
