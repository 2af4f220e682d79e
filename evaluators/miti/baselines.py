"""Baselines on the classifier's own split, and the metrics every method is reported with.

* majority: the most frequent training label, always.
* tfidf_logreg: scikit-learn TF-IDF (therapist turn: word 1-2-grams with "?" kept as a token;
  client turn: word unigrams) + class-balanced logistic regression.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import numpy as np
import pandas as pd

from miti.labels import LABELS

TOKEN_PATTERN = r"(?u)\b\w+\b|\?"


def majority(train: pd.DataFrame, test: pd.DataFrame) -> list[str]:
    label = Counter(train["label"]).most_common(1)[0][0]
    return [label] * len(test)


def tfidf_logreg(train: pd.DataFrame, test: pd.DataFrame, *, seed: int = 0) -> list[str]:
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    features = ColumnTransformer([
        ("therapist", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=TOKEN_PATTERN),
         "therapist"),
        ("client", TfidfVectorizer(min_df=2, sublinear_tf=True, token_pattern=TOKEN_PATTERN), "client"),
    ])
    pipeline = make_pipeline(features, LogisticRegression(C=4.0, class_weight="balanced", max_iter=2000,
                                                          random_state=seed))
    pipeline.fit(train[["therapist", "client"]], train["label"])
    return list(pipeline.predict(test[["therapist", "client"]]))


def classification_metrics(truth: Sequence[str], predicted: Sequence[str]) -> dict:
    """accuracy, macro-F1 and per-class F1 (over all LABELS, absent classes scoring 0), in percent."""
    from sklearn.metrics import f1_score

    per_class = f1_score(truth, predicted, labels=list(LABELS), average=None, zero_division=0)
    return {
        "n": len(truth),
        "accuracy": round(100 * float(np.mean(np.asarray(truth) == np.asarray(predicted))), 2),
        "macro_f1": round(100 * float(per_class.mean()), 2),
        "f1": {label: round(100 * float(v), 2) for label, v in zip(LABELS, per_class)},
    }
