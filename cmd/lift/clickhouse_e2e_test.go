package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/internal/chcluster"
	"github.com/liftlab/lift/internal/jsoncmp"
	"github.com/liftlab/lift/metric/clickhouse"
)

// TestServeClickHouseEndToEnd: the same experiment, exposures and events
// posted over HTTP to two "lift serve" processes, one on the DuckDB engine and
// one with --engine clickhouse over two shards started for the test; once the
// second has forwarded its committed rows, GET /v1/experiments/KEY/results
// answers the same analysis as the first to 1e-9 (every estimate, bound,
// standard error and p-value of every metric, CUPED included). Then the
// ClickHouse server is stopped and started again on the same file: nothing is
// forwarded twice (the results are unchanged), and exposures posted after the
// restart, while one shard is down, are acknowledged and forwarded once it is
// back. Last, a unit inserted into ClickHouse alone shows in the results: they
// are ClickHouse's. On the way, geoOverClickHouse checks the geo path.
func TestServeClickHouseEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	ctx := context.Background()
	c, skip, err := chcluster.FromEnv(ctx, t.TempDir(), 2)
	if err != nil {
		t.Fatal(err)
	}
	if skip != "" {
		t.Skip(skip)
	}
	if len(c.Servers) >= 2 && c.Servers[0].PID() != 0 {
		defer c.Stop()
	}
	if err := c.Truncate(ctx); err != nil {
		t.Fatal(err)
	}
	bin := buildLift(t)
	dir := t.TempDir()
	chFlags := []string{"--db", filepath.Join(dir, "ch.duckdb"), "--engine", "clickhouse",
		"--clickhouse", strings.Join(c.Addrs()[:2], ","), "--clickhouse-cluster", chcluster.ClusterName}
	duck := startServe(t, bin, "--db", filepath.Join(dir, "duck.duckdb"))
	ch := startServe(t, bin, chFlags...)

	start := time.Now().UTC().Add(-72 * time.Hour).Truncate(time.Second)
	r := rand.New(rand.NewPCG(16, 2))
	var xs, evs []map[string]any
	for u := range 1200 {
		unit := fmt.Sprintf("u%d", u)
		variant := []string{"control", "treatment"}[r.IntN(2)]
		first := start.Add(time.Duration(r.Int64N(int64(24 * time.Hour)))).Truncate(time.Microsecond)
		xs = append(xs, map[string]any{"experiment": "checkout", "unit": unit, "variant": variant, "ts": first.Format(time.RFC3339Nano)})
		lift := 0.0
		if variant == "treatment" {
			lift = 2
		}
		for k := range r.IntN(6) {
			ts := first.Add(time.Duration((r.Float64()*3 - 1) * float64(24*time.Hour))).Truncate(time.Microsecond)
			if ts.After(time.Now().Add(-time.Minute)) {
				continue
			}
			evs = append(evs, map[string]any{"event_id": fmt.Sprintf("%s-%d", unit, k), "unit": unit, "type": "purchase",
				"ts": ts.Format(time.RFC3339Nano), "value": math.Round((r.ExpFloat64()*10+lift)*100) / 100})
		}
	}
	metrics := []map[string]any{
		{"name": "revenue", "event_type": "purchase", "aggregation": "sum", "covariate": map[string]any{"days": 1}},
		{"name": "orders", "event_type": "purchase", "aggregation": "count"},
		{"name": "converted", "event_type": "purchase", "aggregation": "binary", "window": map[string]any{"end_days": 1}},
		{"name": "aov", "event_type": "purchase", "aggregation": "mean", "cap": map[string]any{"percentile": 0.95}},
	}
	for _, s := range []*liftServer{duck, ch} {
		for _, m := range metrics {
			s.mustCall(t, "POST", "/v1/metrics", m, nil)
		}
		s.mustCall(t, "POST", "/v1/experiments", map[string]any{
			"key": "checkout", "variants": []map[string]any{{"name": "control", "weight": 0.5}, {"name": "treatment", "weight": 0.5}},
			"metrics": []map[string]any{{"name": "revenue", "primary": true}, {"name": "orders"}, {"name": "converted"}, {"name": "aov"}}}, nil)
		s.mustCall(t, "POST", "/v1/experiments/checkout/start", map[string]any{"started_at": start.Add(-time.Hour).Format(time.RFC3339)}, nil)
		for i := 0; i < len(xs); i += 300 {
			s.mustCall(t, "POST", "/v1/exposures", map[string]any{"exposures": xs[i:min(i+300, len(xs))]}, nil)
		}
		for i := 0; i < len(evs); i += 700 {
			s.mustCall(t, "POST", "/v1/events", map[string]any{"events": evs[i:min(i+700, len(evs))]}, nil)
		}
	}
	var want map[string]any
	duck.mustCall(t, "GET", "/v1/experiments/checkout/results", nil, &want)
	// The comparison must be of numbers: every metric analyzed, with effects.
	for _, m := range want["metrics"].([]any) {
		m := m.(map[string]any)
		if m["error"] != nil || len(m["comparisons"].([]any)) != 1 {
			t.Fatalf("DuckDB's results for %v: %v", m["name"], m)
		}
	}
	answer := func(s *liftServer) map[string]any {
		t.Helper()
		// The forwarder runs every second: wait until ClickHouse holds every unit.
		var got map[string]any
		for deadline := time.Now().Add(60 * time.Second); ; {
			got = nil
			s.mustCall(t, "GET", "/v1/experiments/checkout/results", nil, &got)
			if reflect.DeepEqual(got["exposures"], want["exposures"]) && jsoncmp.Diff(got["metrics"], want["metrics"], 1e-9) == "" {
				return got
			}
			if time.Now().After(deadline) {
				return got
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	got := answer(ch)
	if got["input_hash"] != want["input_hash"] {
		t.Errorf("input hash %v, want DuckDB's %v (the same per-unit values)", got["input_hash"], want["input_hash"])
	}
	if diff := jsoncmp.Diff(got["metrics"], want["metrics"], 1e-9); diff != "" || !reflect.DeepEqual(got["exposures"], want["exposures"]) {
		t.Fatalf("ClickHouse results differ from DuckDB's: exposures %v vs %v; %s", got["exposures"], want["exposures"], diff)
	}
	geoOverClickHouse(t, duck, ch)
	ch.stop(t)
	ch = startServe(t, bin, chFlags...)
	var late []map[string]any
	for i := range 10 { // ten units: some on each shard
		late = append(late, map[string]any{"experiment": "checkout", "unit": fmt.Sprintf("late-%d", i), "variant": "control", "ts": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339Nano)})
	}
	// With a shard down (servers this test started), exposure POSTs are still
	// acknowledged: they are committed to the file and forwarded once it is back.
	down := c.Servers[1].PID() != 0
	if down {
		c.StopServer(1)
	}
	for _, s := range []*liftServer{duck, ch} {
		s.mustCall(t, "POST", "/v1/exposures", map[string]any{"exposures": late}, nil)
	}
	if down {
		if err := c.StartServer(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	want = nil
	duck.mustCall(t, "GET", "/v1/experiments/checkout/results", nil, &want)
	got = answer(ch)
	if diff := jsoncmp.Diff(got["metrics"], want["metrics"], 1e-9); diff != "" || !reflect.DeepEqual(got["exposures"], want["exposures"]) {
		t.Fatalf("after a restart: ClickHouse results differ from DuckDB's: exposures %v vs %v; %s", got["exposures"], want["exposures"], diff)
	}
	eraseOverClickHouse(t, ctx, c, duck, ch, want, evs[0]["unit"].(string))
	// The answer is ClickHouse's: a unit that only ClickHouse holds counts.
	only := "only-in-clickhouse"
	ins := fmt.Sprintf("INSERT INTO %s (experiment, unit, variant, ts, in_holdout, holdout_version) SELECT 'checkout', '%s', 'control', %d, 0, 0",
		clickhouse.ExposuresLocal, only, start.Add(time.Hour).UnixMicro())
	if _, err := c.Query(ctx, c.Servers[clickhouse.Shard(only, 2)], ins); err != nil {
		t.Fatal(err)
	}
	got = nil
	ch.mustCall(t, "GET", "/v1/experiments/checkout/results", nil, &got)
	if g, w := got["exposures"].(map[string]any)["control"], want["exposures"].(map[string]any)["control"].(float64)+1; g != w {
		t.Errorf("with a unit inserted into ClickHouse only, control has %v units, want %v", g, w)
	}
	ch.stop(t)
}

// eraseOverClickHouse: DELETE /v1/units/ID of a forwarded unit with events,
// on both servers. The ClickHouse server's answer says its ClickHouse part is
// pending, and GET /v1/units/ID/data says done once the forwarder has run;
// then no row of either shard has the id (unit, or an event id of the unit),
// the exposure counts are those of before (before) and the results equal
// DuckDB's after the same erasure, to 1e-9.
func eraseOverClickHouse(t *testing.T, ctx context.Context, c *chcluster.Cluster, duck, ch *liftServer, before map[string]any, unit string) {
	t.Helper()
	var de, ce map[string]any
	duck.mustCall(t, "DELETE", "/v1/units/"+unit, nil, &de)
	ch.mustCall(t, "DELETE", "/v1/units/"+unit, nil, &ce)
	if de["clickhouse"] != nil || ce["clickhouse"] != "pending" || ce["pseudonym"] == nil {
		t.Errorf("erasure answers: DuckDB %v, ClickHouse %v; want clickhouse pending on the second only", de, ce)
	}
	var data map[string]any
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		data = nil
		ch.mustCall(t, "GET", "/v1/units/"+unit+"/data", nil, &data)
		if e, _ := data["erasure"].(map[string]any); e != nil && e["clickhouse"] == "done" || time.Now().After(deadline) {
			break
		}
	}
	if e, _ := data["erasure"].(map[string]any); e == nil || e["clickhouse"] != "done" || e["pseudonym"] != ce["pseudonym"] {
		t.Fatalf("the unit's data after the forwarder ran: erasure %v, want ClickHouse done under %v", data["erasure"], ce["pseudonym"])
	}
	for i, s := range c.Servers[:2] {
		for _, q := range []string{
			fmt.Sprintf("SELECT count() FROM %s WHERE unit = '%s'", clickhouse.ExposuresLocal, unit),
			fmt.Sprintf("SELECT count() FROM %s WHERE unit = '%s' OR startsWith(event_id, '%s-')", clickhouse.EventsLocal, unit, unit),
		} {
			if n, err := c.Query(ctx, s, q); err != nil || strings.TrimSpace(n) != "0" {
				t.Errorf("shard %d: %s = %q, %v; want 0", i, q, n, err)
			}
		}
	}
	var want, got map[string]any
	duck.mustCall(t, "GET", "/v1/experiments/checkout/results", nil, &want)
	ch.mustCall(t, "GET", "/v1/experiments/checkout/results", nil, &got)
	if !reflect.DeepEqual(want["exposures"], before["exposures"]) || !reflect.DeepEqual(got["exposures"], before["exposures"]) {
		t.Errorf("exposures after the erasure: DuckDB %v, ClickHouse %v; before %v", want["exposures"], got["exposures"], before["exposures"])
	}
	if diff := jsoncmp.Diff(got["metrics"], want["metrics"], 1e-9); diff != "" {
		t.Errorf("after the erasure ClickHouse's results differ from DuckDB's: %s", diff)
	}
	if diff := jsoncmp.Diff(want["metrics"], before["metrics"], 1e-9); diff == "" {
		t.Errorf("the erased unit's events changed no result: choose a unit with purchases")
	}
}

// geoOverClickHouse: a geo analysis over stored events (POST /v1/analyses/geo
// with a metric and a market attribute) answers the same on the ClickHouse
// engine as on DuckDB, once the events are forwarded. Eight markets of three
// units, 21 days of sales in multiples of ¼ (so every sum is exact in any
// order), two test markets lifted by 6 from day 14. The events are of their
// own type, so the experiment's results are untouched.
func geoOverClickHouse(t *testing.T, duck, ch *liftServer) {
	t.Helper()
	from := time.Now().UTC().AddDate(0, 0, -30).Truncate(24 * time.Hour)
	const days, startDay = 21, 14
	markets := []string{"m0", "m1", "m2", "m3", "m4", "m5", "t1", "t2"}
	level := []int{0, 2, 4, 6, 8, 10, 5, 7}
	r := rand.New(rand.NewPCG(23, 16))
	var evs, units []map[string]any
	for mi, m := range markets {
		for k := range 3 {
			u := fmt.Sprintf("geo-%s-u%d", m, k)
			units = append(units, map[string]any{"unit": u, "attributes": map[string]any{"city": m}})
			for d := range days {
				v := float64(10+level[mi]+r.IntN(7)+d/3) + 0.25*float64(r.IntN(4))
				if (m == "t1" || m == "t2") && d >= startDay {
					v += 6
				}
				ts := from.Add(time.Duration(d)*24*time.Hour + time.Duration(r.IntN(86400))*time.Second)
				evs = append(evs, map[string]any{"event_id": fmt.Sprintf("%s-%d", u, d), "unit": u, "type": "sale", "ts": ts.Format(time.RFC3339Nano), "value": v})
			}
		}
	}
	body := map[string]any{"metric": "sales", "market": "city", "period": "day", "treated": []string{"t1", "t2"},
		"from": from.Format(time.RFC3339), "to": from.AddDate(0, 0, days).Format(time.RFC3339),
		"start": from.AddDate(0, 0, startDay).Add(12 * time.Hour).Format(time.RFC3339)}
	for _, s := range []*liftServer{duck, ch} {
		s.mustCall(t, "POST", "/v1/metrics", map[string]any{"name": "sales", "event_type": "sale", "aggregation": "sum"}, nil)
		s.mustCall(t, "POST", "/v1/units", map[string]any{"units": units}, nil)
		for i := 0; i < len(evs); i += 200 {
			s.mustCall(t, "POST", "/v1/events", map[string]any{"events": evs[i:min(i+200, len(evs))]}, nil)
		}
	}
	var want map[string]any
	duck.mustCall(t, "POST", "/v1/analyses/geo", body, &want)
	if want["n_units"] != float64(8) || want["n_periods"] != float64(days) {
		t.Fatalf("DuckDB's geo answer has %v markets and %v periods, want 8 and %d: %.300v", want["n_units"], want["n_periods"], days, want)
	}
	// Until the forwarder has sent the events, ClickHouse has no market (422).
	var got map[string]any
	var err error
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		got = nil
		_, err = ch.call("POST", "/v1/analyses/geo", e2eAdminKey, body, &got)
		if err == nil && jsoncmp.Diff(got, want, 1e-9) == "" || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		t.Fatalf("geo over ClickHouse: %v", err)
	}
	if diff := jsoncmp.Diff(got, want, 1e-9); diff != "" {
		t.Errorf("geo over ClickHouse differs from DuckDB's: %s", diff)
	}
}

// TestNumbersClose: the comparison passes differences within tol and
// nothing more.
func TestNumbersClose(t *testing.T) {
	for _, c := range []struct {
		got, want string
		same      bool
	}{
		{`{"se":0.1961099678671519}`, `{"se":0.19610996786715165}`, true},
		{`{"a":[1,2,{"b":"x"}]}`, `{"a":[1,2,{"b":"x"}]}`, true},
		{`{"se":0.19610996786}`, `{"se":0.19610996787}`, false},
		{`{"a":[1,2]}`, `{"a":[1,2,3]}`, false},
		{`{"a":1}`, `{"a":1,"b":2}`, false},
		{`{"a":"x"}`, `{"a":"y"}`, false},
		{`{"a":true}`, `{"a":1}`, false},
	} {
		var g, w any
		if err := json.Unmarshal([]byte(c.got), &g); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(c.want), &w); err != nil {
			t.Fatal(err)
		}
		if d := jsoncmp.Diff(g, w, 1e-12); (d == "") != c.same {
			t.Errorf("%s vs %s: %q, want same=%v", c.got, c.want, d, c.same)
		}
	}
}
