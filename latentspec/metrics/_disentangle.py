"""Disentanglement of a code with respect to known generating factors: MIG, DCI, SAP, the
FactorVAE score and the best unit per factor (|Spearman ρ|).

Inputs are codes (N, D) and factors (N, K) of the same N examples, with a flag per factor
saying whether it is categorical. Continuous factors are discretised into equal-width bins
where a metric needs classes. The maths follows disentanglement_lib (Locatello et al. 2019);
differences are noted per function. numpy/scipy/scikit-learn only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _check(codes: np.ndarray, factors: np.ndarray, categorical: Sequence[bool] | None) -> tuple:
    codes, factors = np.asarray(codes, dtype=np.float64), np.asarray(factors, dtype=np.float64)
    if factors.ndim == 1:
        factors = factors[:, None]
    if codes.ndim != 2 or factors.ndim != 2 or len(codes) != len(factors):
        raise ValueError(f"codes (N, D) and factors (N, K) of the same N expected, got {codes.shape}, {factors.shape}")
    if len(codes) < 20:
        raise ValueError(f"disentanglement metrics need at least 20 examples, got {len(codes)}")
    cat = tuple(bool(c) for c in categorical) if categorical is not None else (False,) * factors.shape[1]
    if len(cat) != factors.shape[1]:
        raise ValueError(f"{len(cat)} categorical flags for {factors.shape[1]} factors")
    return codes, factors, cat


def discretize(x: np.ndarray, bins: int) -> np.ndarray:
    """Per column, the index of its equal-width histogram bin (disentanglement_lib's
    ``_histogram_discretize``): (N, D) float -> (N, D) int."""
    x = np.asarray(x, dtype=np.float64)
    out = np.zeros(x.shape, dtype=np.int64)
    for j in range(x.shape[1]):
        edges = np.histogram(x[:, j], bins)[1]
        out[:, j] = np.digitize(x[:, j], edges[:-1])
    return out


def factor_classes(factors: np.ndarray, categorical: Sequence[bool], bins: int) -> np.ndarray:
    """Factors as class indices: categorical ones as they are, continuous ones in ``bins`` bins."""
    out = np.zeros(factors.shape, dtype=np.int64)
    for k, cat in enumerate(categorical):
        col = factors[:, k]
        out[:, k] = np.unique(col, return_inverse=True)[1] if cat else discretize(col[:, None], bins)[:, 0]
    return out


def _split(n: int, seed: int, train: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    cut = round(train * n)
    return order[:cut], order[cut:]


def mutual_info_matrix(codes: np.ndarray, classes: np.ndarray, bins: int = 20) -> np.ndarray:
    """I(z_j; v_k) in nats (D, K) between binned code units and factor classes."""
    from sklearn.metrics import mutual_info_score

    dz = discretize(codes, bins)
    return np.array(
        [[mutual_info_score(classes[:, k], dz[:, j]) for k in range(classes.shape[1])] for j in range(dz.shape[1])]
    )


def mig(codes: np.ndarray, factors: np.ndarray, categorical: Sequence[bool] | None = None, *, bins: int = 20) -> float:
    """Mutual information gap (Chen et al. 2018): per factor, the gap between the two units with
    the most mutual information with it, divided by the factor's entropy; averaged over factors.
    Codes and continuous factors are discretised into ``bins`` equal-width bins."""
    from sklearn.metrics import mutual_info_score

    codes, factors, cat = _check(codes, factors, categorical)
    if codes.shape[1] < 2:
        raise ValueError("MIG needs a code with at least 2 units")
    classes = factor_classes(factors, cat, bins)
    mi = mutual_info_matrix(codes, classes, bins)
    top = np.sort(mi, axis=0)[::-1]
    entropy = np.array([mutual_info_score(classes[:, k], classes[:, k]) for k in range(classes.shape[1])])
    return float(np.mean((top[0] - top[1]) / np.maximum(entropy, 1e-12)))


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    categorical: Sequence[bool] | None = None,
    *,
    n_estimators: int = 50,
    seed: int = 0,
) -> dict[str, float]:
    """DCI (Eastwood & Williams 2018) with gradient-boosted trees: per factor one
    ``GradientBoostingClassifier`` (categorical factors, as in disentanglement_lib) or
    ``GradientBoostingRegressor`` (continuous ones, as in the paper's regression setting) on 80 %
    of the examples; R_jk = the importance of unit j for factor k.

    - disentanglement: Σ_j ρ_j (1 − H_K(P_j·)), P_jk = R_jk / Σ_k R_jk, ρ_j = Σ_k R_jk / Σ R;
    - completeness: Σ_k ρ_k (1 − H_D(P̃_·k)), P̃_jk = R_jk / Σ_j R_jk;
    - informativeness: the mean held-out score on the other 20 %: accuracy for categorical
      factors, R² (floored at 0) for continuous ones; ``informativeness_chance`` is the same mean
      for guessing (the majority-class rate; 0 for R²).
    """
    from scipy.stats import entropy
    from sklearn.ensemble import GradientBoostingClassifier, GradientBoostingRegressor
    from sklearn.metrics import r2_score

    codes, factors, cat = _check(codes, factors, categorical)
    tr, te = _split(len(codes), seed)
    d, k = codes.shape[1], factors.shape[1]
    importance = np.zeros((d, k))
    score, chance = [], []
    for f in range(k):
        y = factors[:, f]
        if len(np.unique(y[tr])) < 2:
            raise ValueError(f"DCI: factor {f} takes one value only in the training part")
        if cat[f]:
            labels = np.unique(y, return_inverse=True)[1]
            model = GradientBoostingClassifier(n_estimators=n_estimators, random_state=seed).fit(codes[tr], labels[tr])
            score.append(float(np.mean(model.predict(codes[te]) == labels[te])))
            chance.append(float(np.bincount(labels[te]).max() / len(te)))
        else:
            model = GradientBoostingRegressor(n_estimators=n_estimators, random_state=seed).fit(codes[tr], y[tr])
            score.append(max(0.0, float(r2_score(y[te], model.predict(codes[te])))))
            chance.append(0.0)
        importance[:, f] = np.abs(model.feature_importances_)
    total = importance.sum()
    if total <= 0:
        return {"disentanglement": 0.0, "completeness": 0.0, "informativeness": float(np.mean(score)),
                "informativeness_chance": float(np.mean(chance))}  # fmt: skip
    code_weight = importance.sum(1) / total
    dis = 1.0 - entropy(importance.T + 1e-11, base=k) if k > 1 else np.ones(d)
    factor_weight = importance.sum(0) / total
    com = 1.0 - entropy(importance + 1e-11, base=d) if d > 1 else np.ones(k)
    return {
        "disentanglement": float(np.sum(code_weight * dis)),
        "completeness": float(np.sum(factor_weight * com)),
        "informativeness": float(np.mean(score)),
        "informativeness_chance": float(np.mean(chance)),
    }


def sap(codes: np.ndarray, factors: np.ndarray, categorical: Sequence[bool] | None = None, *, seed: int = 0) -> float:
    """Separated attribute predictability (Kumar et al. 2018): per factor, the gap between the
    two units that predict it best on their own; averaged over factors.

    A continuous factor's score for a unit is R², the squared correlation (disentanglement_lib's
    continuous branch). A categorical factor's is the balanced test accuracy of a threshold
    classifier on that unit (a depth-limited decision tree), rescaled so chance is 0 and perfect
    is 1 — disentanglement_lib uses a linear SVM's raw accuracy, which cannot split more than two
    ordered classes on one axis and whose chance level is not 0.
    """
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.tree import DecisionTreeClassifier

    codes, factors, cat = _check(codes, factors, categorical)
    if codes.shape[1] < 2:
        raise ValueError("SAP needs a code with at least 2 units")
    tr, te = _split(len(codes), seed)
    d, k = codes.shape[1], factors.shape[1]
    score = np.zeros((d, k))
    for f in range(k):
        y = factors[:, f]
        if cat[f]:
            labels = np.unique(y, return_inverse=True)[1]
            n_classes = labels.max() + 1
            for j in range(d):
                tree = DecisionTreeClassifier(max_leaf_nodes=max(2, 2 * n_classes), random_state=seed)
                tree.fit(codes[tr, j : j + 1], labels[tr])
                acc = balanced_accuracy_score(labels[te], tree.predict(codes[te, j : j + 1]))
                score[j, f] = max(0.0, (acc - 1 / n_classes) / (1 - 1 / n_classes))
        else:
            for j in range(d):
                c = np.cov(codes[:, j], y, ddof=1)
                score[j, f] = c[0, 1] ** 2 / (c[0, 0] * c[1, 1]) if c[0, 0] > 1e-12 and c[1, 1] > 1e-12 else 0.0
    top = np.sort(score, axis=0)[::-1]
    return float(np.mean(top[0] - top[1]))


def factorvae_score(
    codes: np.ndarray,
    factors: np.ndarray,
    categorical: Sequence[bool] | None = None,
    *,
    bins: int = 10,
    batch: int = 64,
    votes: int = 800,
    seed: int = 0,
) -> dict[str, float]:
    """The FactorVAE score (Kim & Mnih 2018): normalise each unit by its standard deviation over
    all examples (units below 0.05 are dropped as collapsed); for a random factor k, take a batch
    of examples sharing k's value and vote for the unit with the least normalised variance; a
    majority-vote classifier maps units to factors, and the score is its accuracy on held-out
    votes. The generative model of the original is replaced by the finite example set: a batch
    is drawn (with replacement) among the examples in the same class/bin of factor k.
    Chance level is about 1/K (``chance``)."""
    codes, factors, cat = _check(codes, factors, categorical)
    classes = factor_classes(factors, cat, bins)
    std = codes.std(0, ddof=1)
    active = std >= 0.05
    k = classes.shape[1]
    if not active.any():
        return {"score": 0.0, "chance": 1.0 / k, "active_units": 0}
    z = codes[:, active] / std[active]
    rng = np.random.default_rng(seed)
    members = [[np.flatnonzero(classes[:, f] == v) for v in np.unique(classes[:, f])] for f in range(k)]

    def vote() -> tuple[int, int]:
        f = int(rng.integers(k))
        pool = members[f][int(rng.integers(len(members[f])))]
        rows = pool[rng.integers(len(pool), size=batch)]
        return int(np.argmin(z[rows].var(0, ddof=1))), f

    def table(n: int) -> np.ndarray:
        t = np.zeros((z.shape[1], k), dtype=np.int64)
        for _ in range(n):
            j, f = vote()
            t[j, f] += 1
        return t

    train, test = table(votes), table(votes // 2)
    assign = np.argmax(train, axis=1)  # unit -> the factor it votes for most
    correct = test[np.arange(len(assign)), assign].sum()
    return {"score": float(correct / test.sum()), "chance": 1.0 / k, "active_units": int(active.sum())}


def best_units(codes: np.ndarray, factors: np.ndarray) -> list[tuple[int, float]]:
    """Per factor, the unit with the largest |Spearman ρ| with it, and that |ρ|."""
    from scipy.stats import rankdata

    codes, factors, _ = _check(codes, factors, None)
    rz, rf = rankdata(codes, axis=0), rankdata(factors, axis=0)
    rz = (rz - rz.mean(0)) / np.maximum(rz.std(0), 1e-12)
    rf = (rf - rf.mean(0)) / np.maximum(rf.std(0), 1e-12)
    rho = np.abs(rz.T @ rf / len(codes))  # (D, K)
    return [(int(np.argmax(rho[:, f])), float(rho[:, f].max())) for f in range(factors.shape[1])]


def disentanglement(
    codes: np.ndarray,
    factors: np.ndarray,
    categorical: Sequence[bool],
    names: Sequence[str],
    *,
    seed: int = 0,
) -> dict:
    """Every metric above, and the best unit per named factor."""
    out = {
        "mig": mig(codes, factors, categorical),
        "dci": dci(codes, factors, categorical, seed=seed),
        "sap": sap(codes, factors, categorical, seed=seed),
        "factorvae": factorvae_score(codes, factors, categorical, seed=seed),
        "factors": {},
    }
    for name, (unit, rho) in zip(names, best_units(codes, factors)):
        out["factors"][name] = {"best_unit": unit, "spearman": rho}
    return out
