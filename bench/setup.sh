#!/usr/bin/env bash
# Installs the peers the benchmarks compare against — PyTorch (CPU use only),
# scikit-learn, numpy and Optuna with what its samplers need (scipy and
# greenlet for GPSampler, cmaes for CmaEsSampler) — into bench/.venv.
# Benchmarks only; the tests and CI never need them. Re-running is quick once
# they are installed.
# `bash bench/setup.sh tabular` installs only what bench/tabular.py needs
# (scikit-learn, pandas and FLAML with its LightGBM and XGBoost learners).
# `bash bench/setup.sh storage` installs only what bench/storage_overhead.py
# needs (Optuna and psycopg2, for Optuna's RDB storage on PostgreSQL).
# `bash bench/setup.sh text` installs only what bench/text.py needs
# (scikit-learn and fastText, as the fasttext-wheel package).
# Usage: bash bench/setup.sh [tabular|storage|text]
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
if [ "${1:-}" = tabular ]; then
  if ! .venv/bin/python -c "import sklearn, pandas, flaml, lightgbm, xgboost" 2>/dev/null; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet scikit-learn pandas numpy "flaml[automl]"
  fi
  .venv/bin/python -c "import sklearn, pandas, flaml, lightgbm, xgboost; print('scikit-learn', sklearn.__version__, 'pandas', pandas.__version__, 'flaml', flaml.__version__, 'lightgbm', lightgbm.__version__, 'xgboost', xgboost.__version__)"
  exit 0
fi
if [ "${1:-}" = text ]; then
  if ! .venv/bin/python -c "import sklearn, fasttext" 2>/dev/null; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet scikit-learn numpy fasttext-wheel
  fi
  .venv/bin/python -c "import sklearn, fasttext, numpy; print('scikit-learn', sklearn.__version__, 'numpy', numpy.__version__, 'fasttext-wheel ok')"
  exit 0
fi
if [ "${1:-}" = storage ]; then
  if ! .venv/bin/python -c "import optuna, psycopg2" 2>/dev/null; then
    .venv/bin/pip install --quiet --upgrade pip
    .venv/bin/pip install --quiet optuna psycopg2-binary
  fi
  .venv/bin/python -c "import optuna, psycopg2; print('optuna', optuna.__version__, 'psycopg2', psycopg2.__version__)"
  exit 0
fi
if ! .venv/bin/python -c "import torch, sklearn, numpy, optuna, scipy, cmaes, greenlet" 2>/dev/null; then
  # PyPI's Linux torch wheel also pulls its CUDA runtime packages (several GB);
  # the benchmarks use only its CPU kernels.
  .venv/bin/pip install --quiet --upgrade pip
  # Without greenlet, GPSampler falls back to a sequential L-BFGS-B and is slower.
  .venv/bin/pip install --quiet torch scikit-learn numpy optuna scipy cmaes greenlet
fi
.venv/bin/python -c "import torch, sklearn, numpy, optuna, cmaes, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'scikit-learn', sklearn.__version__, 'numpy', numpy.__version__, 'optuna', optuna.__version__, 'cmaes', cmaes.__version__)"
