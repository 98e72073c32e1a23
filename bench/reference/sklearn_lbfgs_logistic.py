# Reference for crates/gradus-train/tests/training.rs (L-BFGS logistic regression):
# scikit-learn LogisticRegression(lbfgs) on standardised breast_cancer, all rows.
# Run: bench/.venv/bin/python bench/reference/sklearn_lbfgs_logistic.py
import gzip, numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler
from sklearn.metrics import log_loss
import csv, io
rows = list(csv.reader(io.TextIOWrapper(gzip.open(__import__("os").path.join(__import__("os").path.dirname(__file__), "../../crates/gradus-data/data/breast_cancer.csv.gz")))))
X = np.array([[float(v) for v in r[:-1]] for r in rows[1:]])
labels = sorted(set(r[-1] for r in rows[1:]))
y = np.array([labels.index(r[-1]) for r in rows[1:]])
X = StandardScaler().fit_transform(X)
n = len(y)
for C in [1.0, 0.1]:
    m = LogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=100000).fit(X, y)
    p = m.predict_proba(X)[:, 1]
    ll = log_loss(y, p)
    obj = ll + 0.5 / (C * n) * np.sum(m.coef_ ** 2)
    print(f"C={C} labels={labels} n={n} l2={1/(C*n)!r} log_loss={ll!r} objective={obj!r} n_iter={m.n_iter_}")
# With class_weight="balanced": sklearn minimises ½‖w‖² + C·Σ w_y·log-loss, as
# gradus minimises mean(w_y·log-loss) + l2/2·‖w‖² with l2 = 1/(C·n) and
# weights n / (2·n_c). Printed: the weights, and the unweighted log-loss and
# the weighted objective at the optimum.
from sklearn.utils.class_weight import compute_class_weight
weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=y)
for C in [1.0]:
    m = LogisticRegression(C=C, solver="lbfgs", tol=1e-12, max_iter=100000, class_weight="balanced").fit(X, y)
    p = m.predict_proba(X)[:, 1]
    ll = log_loss(y, p)
    wll = np.mean(weights[y] * -np.log(np.where(y == 1, p, 1 - p)))
    obj = wll + 0.5 / (C * n) * np.sum(m.coef_ ** 2)
    print(f"balanced C={C} weights={weights.tolist()!r} log_loss={ll!r} objective={obj!r}")
