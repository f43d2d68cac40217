#!/usr/bin/env bash
# Times "lift analyze" with a covariate on a 10M-row CSV against DuckDB alone
# running the equivalent GROUP BY sums on the same file, in the same run:
# RUNS interleaved pairs, so that both see the same machine load.
#   bench/analyze.sh [ROWS] [RUNS]   (defaults 10000000 and 5; about 320 MB in $TMPDIR)
set -euo pipefail
rows=${1:-10000000}
runs=${2:-5}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$(dirname "$0")/.."
go build -o "$dir/lift" ./cmd/lift
go test -c -o "$dir/store.test" ./store
go run ./bench/analyzegen -rows "$rows" -out "$dir/units.csv"
ls -l "$dir/units.csv"
echo "DuckDB alone: SELECT variant, count(*), sum(y), sum(y*y), sum(x), sum(x*x), sum(x*y) FROM read_csv(FILE) GROUP BY variant"
echo "lift analyze: lift analyze --data FILE --variant variant --metric y --covariate x (wall time of the process)"
# Wall and CPU (user+sys) seconds of each process; CPU time is less sensitive
# to other load on the machine.
TIMEFORMAT='%R %U %S'
printf '%-4s %10s %10s %7s %10s %10s %7s\n' run duck_wall lift_wall ratio duck_cpu lift_cpu ratio
for i in $(seq "$runs"); do
	d=$( { time LIFT_BENCH_CSV="$dir/units.csv" "$dir/store.test" -test.run '^$' -test.bench 'FileStats/duckdb_groupby' -test.benchtime 1x > /dev/null; } 2>&1 )
	l=$( { time "$dir/lift" analyze --data "$dir/units.csv" --variant variant --metric y --covariate x > "$dir/out.json"; } 2>&1 )
	read -r dw du ds <<< "$d"
	read -r lw lu ls <<< "$l"
	dc=$(echo "$du + $ds" | bc)
	lc=$(echo "$lu + $ls" | bc)
	printf '%-4s %10s %10s %7s %10s %10s %7s\n' "$i" "$dw" "$lw" "$(echo "scale=3; $lw / $dw" | bc)" "$dc" "$lc" "$(echo "scale=3; $lc / $dc" | bc)"
done
grep -A3 '"cuped"' "$dir/out.json" | head -4
