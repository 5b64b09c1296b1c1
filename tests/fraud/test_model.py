"""The risk model (apps/fraud/model.py) and its command: a small train / save / load round trip,
the threshold rule, refusing a stale model, the fallbacks of load_model, and the shipped
default model on a show it was not trained on."""

from __future__ import annotations

import json
import logging
from io import StringIO
from pathlib import Path

import joblib
import numpy as np
import pytest
from django.core.management import call_command

from apps.fraud import model as fraud_model
from apps.fraud.features import FEATURE_NAMES
from apps.fraud.model import (
    DEFAULT_MODEL_PATH,
    RiskModel,
    choose_threshold,
    history_rows,
    load_model,
    read_model,
    reload_model,
    save,
    train,
)
from apps.fraud.offline import evaluate, feature_rows, format_report, show_facts
from apps.fraud.simulation import GENUINE, Label, random_config


@pytest.fixture(scope="module")
def small_model() -> RiskModel:
    pairs = [p for seed in (101, 102, 103, 104) for p in show_facts(random_config(seed, n_orders=700))]
    return train(pairs, max_iter=60)


@pytest.fixture(autouse=True)
def _forget_the_loaded_model():
    fraud_model._cached = fraud_model._UNSET
    yield
    fraud_model._cached = fraud_model._UNSET


def fan(group: str = "eager_fan") -> Label:
    return Label(GENUINE, group, "a", "p")


def test_a_trained_model_scores_0_to_100_and_flags_at_its_threshold(small_model: RiskModel) -> None:
    assert small_model.feature_names == FEATURE_NAMES
    assert 0 < small_model.threshold <= 100
    assert set(small_model.metrics["validation"]) == {"at placing", "5s after placing", "after the show"}
    assert small_model.info["validation_shows"] and small_model.info["train_shows"]
    rows = list(feature_rows(show_facts(random_config(105, n_orders=500)), delay_ms=5000))
    scores = small_model.score_many([f for f, _ in rows])
    assert ((scores >= 0) & (scores <= 100)).all()
    assert small_model.score(rows[0][0]) == pytest.approx(scores[0])
    abuse = np.array([label.kind != GENUINE for _, label in rows])
    assert scores[abuse].mean() > 50 > scores[~abuse].mean()  # it learnt something
    assert small_model.flags(small_model.threshold) and not small_model.flags(small_model.threshold - 0.01)


def test_save_writes_a_versioned_file_and_replaces_model_joblib(small_model: RiskModel, tmp_path: Path) -> None:
    path = save(small_model, tmp_path / "fraud")
    assert path == tmp_path / "fraud" / "model.joblib"
    versioned = tmp_path / "fraud" / f"fraud-model-{small_model.version}.joblib"
    assert versioned.exists()
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([path.name, versioned.name])  # no temp left
    loaded = read_model(path)
    assert (loaded.version, loaded.threshold, loaded.feature_names) == (
        small_model.version,
        small_model.threshold,
        FEATURE_NAMES,
    )
    rows = [f for f, _ in feature_rows(show_facts(random_config(106, n_orders=200)), delay_ms=None)]
    assert np.allclose(loaded.score_many(rows), small_model.score_many(rows))

    newer = RiskModel("20990101T000000Z", FEATURE_NAMES, 42.0, {}, small_model.estimator)
    save(newer, tmp_path / "fraud")
    assert read_model(path).version == "20990101T000000Z"  # replaced
    assert len(list(path.parent.glob("fraud-model-*.joblib"))) == 2  # both versions kept


def test_load_model_reads_the_configured_path_once_per_process(
    small_model: RiskModel, tmp_path: Path, settings
) -> None:
    settings.FRAUD_MODEL_PATH = save(small_model, tmp_path)
    first = load_model()
    assert first is not None and first.version == small_model.version
    save(RiskModel("20990101T000000Z", FEATURE_NAMES, 42.0, {}, small_model.estimator), tmp_path)
    assert load_model() is first  # cached
    reloaded = reload_model()
    assert reloaded is not None and reloaded.version == "20990101T000000Z"


def test_a_stale_model_is_refused_and_the_shipped_default_used(
    small_model: RiskModel, tmp_path: Path, settings, caplog
) -> None:
    path = save(small_model, tmp_path)
    payload = joblib.load(path)
    payload["feature_names"] = [*payload["feature_names"][1:], "a_feature_from_long_ago"]
    joblib.dump(payload, path)
    with pytest.raises(ValueError, match="stale model"):
        read_model(path)
    settings.FRAUD_MODEL_PATH = path
    with caplog.at_level(logging.ERROR, logger="apps.fraud.model"):
        loaded = load_model()
    assert "stale model" in caplog.text
    assert loaded is not None and loaded.version == read_model(DEFAULT_MODEL_PATH).version


def test_without_any_model_the_rules_decide_alone(tmp_path: Path, settings, monkeypatch, caplog) -> None:
    settings.FRAUD_MODEL_PATH = tmp_path / "absent.joblib"
    monkeypatch.setattr(fraud_model, "DEFAULT_MODEL_PATH", tmp_path / "also-absent.joblib")
    with caplog.at_level(logging.ERROR, logger="apps.fraud.model"):
        assert load_model() is None
    assert "none loaded" in caplog.text
    (tmp_path / "absent.joblib").write_bytes(b"not a model")
    assert reload_model() is None  # a broken file is refused, not a crash


def test_the_threshold_flags_at_most_the_allowed_share_of_every_genuine_group() -> None:
    rng = np.random.default_rng(0)
    eager = [(float(s), fan()) for s in rng.uniform(0, 60, 1000)]
    household = [(float(s), fan("household")) for s in rng.uniform(0, 90, 400)]  # the hard negatives
    abuse = [(float(s), Label("sniper", "sniper", "a", "p")) for s in rng.uniform(50, 100, 300)]
    th = choose_threshold({"view": eager + household + abuse}, max_genuine=0.003, max_group=0.003)
    flagged_household = sum(s >= th for s, _ in household)
    flagged_genuine = sum(s >= th for s, _ in eager + household)
    assert flagged_household <= 0.003 * 400
    assert flagged_genuine <= 0.003 * 1400
    assert sum(s >= th - 0.5 for s, _ in household) > flagged_household  # the lowest such threshold
    # A group too small to bound a rate of 0.3% does not set it on its own.
    tiny = [(99.0, fan("casual"))] + eager
    assert choose_threshold({"v": tiny}) < 99.0


def test_history_rows_take_reviewed_verdicts_only() -> None:
    rows = history_rows(
        [
            ({"quantity": 2, "ua_app": 1.0}, "approved"),
            ({"quantity": 1}, "rejected"),
            ({"quantity": 1}, "pending"),
            ({}, "rejected"),
        ]
    )
    assert [(f, label.kind) for f, label in rows] == [
        ({"quantity": 2.0, "ua_app": 1.0}, GENUINE),
        ({"quantity": 1.0}, "reviewed"),
    ]


def test_a_row_missing_a_feature_scores_as_missing_not_as_zero(small_model: RiskModel) -> None:
    rows = [f for f, _ in feature_rows(show_facts(random_config(107, n_orders=100)), delay_ms=0)]
    partial = {k: v for k, v in rows[0].items() if k != "cluster_buyers"}
    assert 0 <= small_model.score(partial) <= 100


@pytest.mark.django_db
def test_the_command_trains_reports_and_saves(tmp_path: Path) -> None:
    out = StringIO()
    call_command("train_fraud_model", shows=3, orders=400, holdout=1, out=str(tmp_path), stdout=out)
    text = out.getvalue()
    assert "recall" in text and "household" in text and "hoarder" in text
    assert "no labelled history" in text or "labelled history:" in text
    model = read_model(tmp_path / "model.joblib")
    assert model.metrics["held_out"]["seeds"] == [900_000]
    assert model.info["train_seeds"] == [1000, 1001, 1002]


# --- the shipped default ----------------------------------------------------------------------------


def test_the_shipped_default_model_is_current_and_described() -> None:
    model = read_model(DEFAULT_MODEL_PATH)  # raises if its features are stale
    card = json.loads((DEFAULT_MODEL_PATH.parent / "model.json").read_text())
    assert card["version"] == model.version and card["threshold"] == model.threshold
    assert card["feature_names"] == list(FEATURE_NAMES)
    assert card["info"]["sklearn"] and card["held_out"]["views"]


HELD_OUT_SEED = 770_001  # neither a training nor a validation show of the shipped model


def test_the_shipped_default_model_on_a_show_it_has_not_seen() -> None:
    model = read_model(DEFAULT_MODEL_PATH)
    assert HELD_OUT_SEED not in model.info["train_seeds"]
    report = evaluate(model, [HELD_OUT_SEED], 2000, views={"5s after placing": 5_000})
    view = report.views["5s after placing"]
    assert view.abuse.orders > 150 and view.genuine.orders > 1000
    assert view.abuse.rate >= 0.85, format_report(report)
    assert view.genuine.rate <= 0.02, format_report(report)
