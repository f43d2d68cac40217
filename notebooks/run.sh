#!/usr/bin/env bash
# Executes every notebook in notebooks/ top to bottom against a real "lift serve"
# over the demo's database, and runs the Python client's tests.
#
#   notebooks/run.sh --check   execute into a temporary folder and compare the
#                              numbers the notebooks print with the committed
#                              outputs (CI); fails with a diff when they differ
#   notebooks/run.sh --write   execute and write the outputs (plots included)
#                              back into the committed notebooks
#
# Name notebooks after the mode to run only those (e.g. --write
# notebooks/privacy-budget.ipynb); the default is every notebooks/*.ipynb.
#
# Needs Go, and Debian's Python 3 with pandas, matplotlib, requests, nbconvert,
# nbformat and ipykernel (LIFT_PYTHON, default /usr/bin/python3). Reference data
# (Card & Krueger, Hillstrom) are read from LIFT_REFERENCE_DATA, default
# ../shared/peer-data beside the repository.
set -euo pipefail

mode=check
case "${1:-}" in
--check | "") mode=check ;;
--write) mode=write ;;
-h | --help)
	sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
	exit 0
	;;
*)
	echo "usage: notebooks/run.sh [--check | --write] [NOTEBOOK.ipynb ...]" >&2
	exit 2
	;;
esac
[ $# -gt 0 ] && shift

notebooks=()
for nb in "$@"; do
	notebooks+=("$(cd "$(dirname "$nb")" && pwd)/$(basename "$nb")")
done
cd "$(dirname "$0")/.."
root=$PWD
if [ ${#notebooks[@]} -eq 0 ]; then
	notebooks=("$root"/notebooks/*.ipynb)
fi
for nb in "${notebooks[@]}"; do
	case "$nb" in
	"$root"/notebooks/*.ipynb) [ -f "$nb" ] || { echo "notebooks/run.sh: no notebook $nb" >&2; exit 2; } ;;
	*) echo "notebooks/run.sh: $nb is not a notebook in notebooks/" >&2; exit 2 ;;
	esac
done
py=${LIFT_PYTHON:-/usr/bin/python3}
if ! "$py" -c 'import pandas, matplotlib, requests, nbconvert, nbformat, ipykernel' 2>/dev/null; then
	echo "notebooks/run.sh: $py lacks a package the notebooks need; on Debian:" >&2
	echo "  apt-get install python3-pandas python3-matplotlib python3-requests python3-nbconvert jupyter-nbconvert python3-ipykernel python3-nbformat" >&2
	exit 1
fi
export LIFT_REFERENCE_DATA=${LIFT_REFERENCE_DATA:-$root/../shared/peer-data}
for f in card-krueger-public.dat hillstrom.csv; do
	if [ ! -r "$LIFT_REFERENCE_DATA/$f" ]; then
		echo "notebooks/run.sh: $LIFT_REFERENCE_DATA/$f is absent (set LIFT_REFERENCE_DATA; see testdata/README.md for where to get it)" >&2
		exit 1
	fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/lift-notebooks.XXXXXX")
server_pid=
stop_server() {
	if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid"
		wait "$server_pid" || true
	fi
	server_pid=
}
trap 'stop_server; rm -rf "$work"' EXIT

start=$(date +%s)
echo "notebooks: building lift"
go build -o "$work/lift" ./cmd/lift
echo "notebooks: creating the demo database"
mkdir -p "$work/demo"
"$work/lift" demo --db "$work/demo/lift.duckdb" >"$work/demo.log" 2>&1 || {
	cat "$work/demo.log" >&2
	exit 1
}

export LIFT_ADMIN_KEY="lift_notebooks_$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
"$work/lift" serve --db "$work/demo/lift.duckdb" --models "$work/demo/lift-models" \
	--addr 127.0.0.1:0 --request-timeout 10m --log-level warn >"$work/serve.out" 2>"$work/serve.log" &
server_pid=$!
url=
for _ in $(seq 1 600); do
	url=$(sed -n 's/^lift serving on \(http:[^ ]*\).*/\1/p' "$work/serve.out")
	[ -n "$url" ] && break
	if ! kill -0 "$server_pid" 2>/dev/null; then
		echo "notebooks/run.sh: lift serve exited:" >&2
		cat "$work/serve.out" "$work/serve.log" >&2
		exit 1
	fi
	sleep 0.1
done
if [ -z "$url" ]; then
	echo "notebooks/run.sh: lift serve printed no address within 60 s" >&2
	exit 1
fi
echo "notebooks: lift serve at $url (pid $server_pid)"

export LIFT_URL=$url LIFT_KEY=$LIFT_ADMIN_KEY LIFT_BIN=$work/lift
export PYTHONPATH=$root/clients/python${PYTHONPATH:+:$PYTHONPATH}
export PYTHONDONTWRITEBYTECODE=1 PYDEVD_DISABLE_FILE_VALIDATION=1 TZ=UTC
# A kernel "python3" that is $py, whatever the machine's default kernel is.
mkdir -p "$work/jupyter/kernels/python3"
cat >"$work/jupyter/kernels/python3/kernel.json" <<JSON
{"argv": ["$py", "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
 "display_name": "Python 3 (ipykernel)", "language": "python"}
JSON
export JUPYTER_PATH=$work/jupyter JUPYTER_DATA_DIR=$work/jupyter-data JUPYTER_CONFIG_DIR=$work/jupyter-config
export JUPYTER_RUNTIME_DIR=$work/jupyter-runtime IPYTHONDIR=$work/ipython MPLCONFIGDIR=$work/matplotlib

echo "notebooks: the Python client's tests, and the output checker's"
"$py" -m unittest discover -s clients/python/tests
(cd notebooks && "$py" -m unittest test_check_outputs)

mkdir -p "$work/out"
for nb in "${notebooks[@]}"; do
	nb=notebooks/$(basename "$nb")
	echo "notebooks: executing $nb"
	t0=$(date +%s)
	"$py" -m nbconvert --to notebook --execute --log-level=WARN \
		--ExecutePreprocessor.kernel_name=python3 --ExecutePreprocessor.timeout=900 \
		--ExecutePreprocessor.record_timing=False \
		--output-dir "$work/out" "$nb"
	echo "notebooks: $nb ran in $(($(date +%s) - t0)) s"
done
stop_server

if [ "$mode" = write ]; then
	cp "$work"/out/*.ipynb notebooks/
	echo "notebooks: wrote the outputs into notebooks/*.ipynb ($(($(date +%s) - start)) s)"
else
	"$py" notebooks/check_outputs.py notebooks "$work/out" "${notebooks[@]##*/}"
	echo "notebooks: the committed outputs match ($(($(date +%s) - start)) s)"
fi
