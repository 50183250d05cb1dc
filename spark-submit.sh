#!/usr/bin/env bash
# The one way to run a movierec-spark job, locally or against a cluster.
#
#   ./spark-submit.sh [spark-submit options] jobs/<job>.py [job arguments]
#
# It finds Spark (an existing $SPARK_HOME, else the pip-installed PySpark),
# runs the job with the project's Python (.venv/bin/python, or
# $PYSPARK_PYTHON), applies conf/spark-defaults.conf and conf/log4j2.properties
# (set SPARK_CONF_DIR to use another folder), and ships the movierec_spark
# package to executors with --py-files. Every spark-submit option passes
# through: --master, --conf key=value, --driver-memory, --py-files, ...
# --remote sc://HOST:PORT (or SPARK_REMOTE) runs the job as a Spark Connect
# client instead: plain Python, no JVM here.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
me="spark-submit.sh"

die() {
  echo "$me: error: $*" >&2
  exit 2
}

usage() {
  cat <<EOF
usage: ./spark-submit.sh [spark-submit options] jobs/<job>.py [job arguments]

jobs:
$(cd "$ROOT" && ls jobs/*.py 2>/dev/null | grep -v __init__ | sed 's/^/  /')

Every job takes --help. Spark options (--master, --conf k=v, ...) go before the job;
--remote sc://HOST:PORT runs it on a Spark Connect server.
EOF
}

# --- Python: the project's environment, so the driver and local executors
# import the pinned PySpark, pandas and pyarrow.
if [[ -n "${PYSPARK_PYTHON:-}" ]]; then
  PY="$PYSPARK_PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
  PY="$ROOT/.venv/bin/python"
else
  PY="$(command -v python3 || true)"
fi
[[ -n "$PY" ]] || die "no Python found; create the environment first: python3 -m venv .venv && .venv/bin/pip install -e ."
export PYSPARK_PYTHON="$PY"
export PYSPARK_DRIVER_PYTHON="${PYSPARK_DRIVER_PYTHON:-$PY}"

# --- Java: Spark 4 needs Java 17 or newer (a Spark Connect client needs none).
require_java() {
  local java java_version
  if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then
    java="$JAVA_HOME/bin/java"
  else
    java="$(command -v java || true)"
  fi
  local help="install Java 17+ (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17; or https://adoptium.net) and put it on PATH or set JAVA_HOME"
  [[ -n "$java" ]] || die "Java not found: $help"
  java_version="$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9]*\).*/\1/p' | head -n1)"
  if [[ -z "$java_version" || "$java_version" -lt 17 ]]; then
    die "Java ${java_version:-of unknown version} at $java is too old: $help"
  fi
}

# --- Spark: $SPARK_HOME if set, else the PySpark installed for $PY (its
# package folder holds bin/spark-submit and jars/). Located without importing
# it: importing pyspark (py4j and all) would add to every job's start.
if [[ -z "${SPARK_HOME:-}" ]]; then
  if ! SPARK_HOME="$("$PY" -c 'import importlib.util, os; print(os.path.dirname(importlib.util.find_spec("pyspark").origin))' 2>/dev/null)"; then
    die "PySpark not found for $PY; set up the environment: python3 -m venv .venv && .venv/bin/pip install -e ."
  fi
fi
export SPARK_HOME
[[ -x "$SPARK_HOME/bin/spark-submit" ]] || die "no bin/spark-submit under SPARK_HOME=$SPARK_HOME"
export SPARK_CONF_DIR="${SPARK_CONF_DIR:-$ROOT/conf}"
export MOVIEREC_CONF_DIR="${MOVIEREC_CONF_DIR:-$ROOT/conf}"

# --- Split the command line: spark-submit options, then the job and its arguments.
# The options the wrapper itself acts on, kept as they pass through.
remember() {
  case "$1" in
    --master) master="$2" ;;
    --remote) remote="$2" ;;
    --deploy-mode) deploy_mode="$2" ;;
  esac
}
spark_opts=()
user_py_files=""
master=""
remote="${SPARK_REMOTE:-}"
deploy_mode=""
job=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    *.py)
      job="$1"
      shift
      break
      ;;
    --py-files)
      [[ $# -ge 2 ]] || die "--py-files needs a value"
      user_py_files="$2"
      shift 2
      ;;
    --py-files=*)
      user_py_files="${1#--py-files=}"
      shift
      ;;
    --master | --remote | --deploy-mode)
      [[ $# -ge 2 ]] || die "$1 needs a value"
      remember "$1" "$2"
      spark_opts+=("$1" "$2")
      shift 2
      ;;
    --master=* | --remote=* | --deploy-mode=*)
      remember "${1%%=*}" "${1#*=}"
      spark_opts+=("$1")
      shift
      ;;
    --verbose | --supervise)
      spark_opts+=("$1")
      shift
      ;;
    -*)
      [[ $# -ge 2 ]] || die "spark-submit option $1 needs a value"
      spark_opts+=("$1" "$2")
      shift 2
      ;;
    *)
      die "expected a job (jobs/<job>.py), got '$1'; see ./spark-submit.sh --help"
      ;;
  esac
done
if [[ -z "$job" ]]; then
  usage >&2
  exit 2
fi
[[ -f "$job" ]] || die "job file $job does not exist; see ./spark-submit.sh --help"

# Spark Connect (--remote sc://HOST:PORT, or SPARK_REMOTE): the job is a
# client of that server, which runs the work (movierec_spark/session.py). A
# client needs no JVM: the job runs as plain Python (below), and only
# settings of the session itself travel, --conf spark.sql.*=... and the
# spark.sql.* lines of spark-defaults.conf; memory, cores and the rest are
# the server's.
connect_conf=()
if [[ -n "$remote" ]]; then
  [[ -z "$master" ]] || die "--master and --remote both given: a Spark Connect server has its own master"
  [[ "$remote" == sc://* ]] || die "--remote must be a Spark Connect URL, sc://HOST:PORT, got '$remote'"
  [[ -z "$user_py_files" ]] || die "--py-files does not apply to a Spark Connect client; the server takes the library as an artifact"
  i=0
  while ((i < ${#spark_opts[@]})); do
    case "${spark_opts[i]}" in
      --remote) i=$((i + 2)) ;;
      --remote=*) i=$((i + 1)) ;;
      --conf | -c) connect_conf+=("${spark_opts[i + 1]}"); i=$((i + 2)) ;;
      --conf=*) connect_conf+=("${spark_opts[i]#--conf=}"); i=$((i + 1)) ;;
      *) die "${spark_opts[i]} does not apply to a Spark Connect client (--remote): the server has its own; only --conf settings of the session travel" ;;
    esac
  done
  export SPARK_REMOTE="$remote"
else
  require_java
fi
# A loopback hostname makes Spark warn and guess an interface; bind local
# runs to 127.0.0.1. Cluster runs keep the machine's address.
if [[ -z "$remote" && ( -z "$master" || "$master" == local* ) ]]; then
  export SPARK_LOCAL_IP="${SPARK_LOCAL_IP:-127.0.0.1}"
  # A short local run gets a JVM with the C1 JIT only (movierec_spark/launch.py
  # decides from the job's arguments), unless driver JVM options were given.
  if [[ " ${spark_opts[*]+"${spark_opts[*]}"} " != *" --driver-java-options "* &&
        " ${spark_opts[*]+"${spark_opts[*]}"} " != *"spark.driver.extraJavaOptions"* ]]; then
    jvm_opts="$(PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m movierec_spark.launch "$job" "$@" | tr '\n' ' ')"  || jvm_opts=""
    jvm_opts="${jvm_opts% }"
    if [[ -n "$jvm_opts" ]]; then spark_opts+=(--driver-java-options "$jvm_opts"); fi
  fi
fi

# --- Package the library for executors (and the driver on a cluster).
# The zip is named by its content: a job still running from an older
# package keeps reading its own file while a newer run packages changed
# code (zipimport reads a replaced file's entries at the old offsets), and
# an unchanged package keeps its file and modification time, to which numba
# keys its on-disk cache of compiled kernels (models/driver_als.py).
build_dir="$ROOT/build"
mkdir -p "$build_dir"
package="$("$PY" - "$ROOT" "$build_dir" <<'PYEOF'
import hashlib, io, os, sys, time, zipfile
root, build = sys.argv[1], sys.argv[2]
buffer = io.BytesIO()
with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
    for folder, dirs, files in os.walk(os.path.join(root, "movierec_spark")):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                info = zipfile.ZipInfo(os.path.relpath(path, root), date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with open(path, "rb") as fh:
                    zf.writestr(info, fh.read())
data = buffer.getvalue()
target = os.path.join(build, f"movierec_spark-{hashlib.sha256(data).hexdigest()[:12]}.zip")
if not os.path.exists(target):
    tmp = f"{target}.{os.getpid()}.tmp"
    with open(tmp, "wb") as fh:
        fh.write(data)
    os.replace(tmp, target)
# Packages of older code, unused for a week, go.
for name in os.listdir(build):
    path = os.path.join(build, name)
    if name.startswith("movierec_spark") and name.endswith(".zip") and path != target:
        if time.time() - os.path.getmtime(path) > 7 * 86400:
            os.remove(path)
print(target)
PYEOF
)"
py_files="$package"
[[ -n "$user_py_files" ]] && py_files="$package,$user_py_files"

if [[ -n "$remote" ]]; then
  # PySpark's Connect client applies these to the session it creates.
  export PYSPARK_REMOTE_INIT_CONF_LEN=1
  PYSPARK_REMOTE_INIT_CONF_0="$("$PY" - "$SPARK_CONF_DIR/spark-defaults.conf" \
    "${connect_conf[@]+"${connect_conf[@]}"}" <<'PYEOF'
import json, os, re, sys
defaults, pairs = sys.argv[1], sys.argv[2:]
conf = {}
if os.path.isfile(defaults):
    for line in open(defaults, encoding="utf-8"):
        key, value = (re.split(r"\s*[\s=:]\s*", line.strip(), maxsplit=1) + [""])[:2]
        if key.startswith("spark.sql.") and not key.startswith("spark.sql.ui."):
            conf[key] = value
for pair in pairs:
    key, _, value = pair.partition("=")
    conf[key.strip()] = value.strip()
print(json.dumps(conf))
PYEOF
)"
  export PYSPARK_REMOTE_INIT_CONF_0
  # The server gets the package as an artifact (session.build_session).
  export MOVIEREC_PACKAGE="$package"
  PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" "$job" "$@"
fi

# recommend.py and similar.py serve a local model folder without Spark
# (movierec_spark/serving/local.py): on a local master they start as plain
# Python, with no JVM, and start Spark themselves (PySpark's launcher, with
# these same options) only when the model or the number of people needs it.
case "$(basename "$job")" in
  recommend.py | similar.py)
    if [[ -z "$remote" && ( -z "$master" || "$master" == local* ) ]]; then
      submit_args="--name movierec-$(basename "$job" .py) --py-files $(printf '%q' "$py_files")"
      for opt in "${spark_opts[@]+"${spark_opts[@]}"}"; do submit_args+=" $(printf '%q' "$opt")"; done
      export PYSPARK_SUBMIT_ARGS="$submit_args pyspark-shell"
      PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" exec "$PY" "$job" "$@"
    fi
    ;;
esac

# Known start-up noise that bypasses conf/log4j2.properties, dropped from stderr
# so a job's stderr holds only what the job and Spark have to say (a job that
# fails on bad input: one line saying what to do):
# - the JVM announces the incubator module Spark's launcher always adds
#   (--add-modules=jdk.incubator.vector), at every start; no JVM option
#   silences it;
# - without a native libblas/liblapack, netlib's loader says so from C before
#   Spark falls back to its Java BLAS (the log4j config quiets the same news).
# exec keeps spark-submit's pid, signals and exit code; the filter ignores
# Ctrl-C so it still passes on what the job prints while shutting down.
# With the driver here (client mode), the JVM ignores Ctrl-C too: the Python
# driver takes it (movierec_spark/cli.py), cancels Spark's jobs and says one
# line through the JVM, whose exit follows the driver's.
if [[ "$deploy_mode" != cluster && " ${spark_opts[*]+"${spark_opts[*]}"} " != *"spark.submit.deployMode=cluster"* ]]; then
  export MOVIEREC_DRIVER_TAKES_CTRL_C=1
  trap '' INT
fi
exec 3>&2
exec "$SPARK_HOME/bin/spark-submit" \
  --name "movierec-$(basename "$job" .py)" \
  --py-files "$py_files" \
  "${spark_opts[@]+"${spark_opts[@]}"}" \
  "$job" "$@" \
  2> >(trap '' INT TERM; exec grep --line-buffered -v -E \
    -e '^WARNING: Using incubator modules: jdk\.incubator\.vector$' \
    -e '^netlib-(blas|lapack): JNI_OnLoad: dlopen\(lib(blas|lapack)\.so\.3\) failed: ' >&3) 3>&-
