package archtest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A layer rule says which of our own packages a package may depend on, directly
// or through others (its non-test dependencies; internal/... helpers aside).
// Patterns are paths relative to the module; "x/..." means x and every package
// below it. To add a rule, add a row: name the package, either the only packages
// it may depend on (may) or those it must not (not), and the reason. A rule marked
// soon is for a package the design plans; it bites as soon as the package exists.
type layerRule struct {
	pkg  string   // the package(s) the rule is about
	may  []string // when not nil: the only packages of ours it may import
	not  []string // packages of ours it must not import
	why  string
	soon bool // the package does not exist yet (issue 16 builds it): the rule bites once it does
}

// Packages that hold I/O: a database, HTTP, the process, scheduling, rendering.
var ioPackages = []string{"store", "api", "cmd/...", "jobs", "journey", "reports", "metric/duckdb", "metric/clickhouse/..."}

var layerRules = []layerRule{
	{pkg: "experiment", may: []string{},
		why: "the vocabulary sits at the bottom: every package may import it, so it imports none of ours"},
	{pkg: "assign", may: []string{"experiment"},
		why: "assignment is a pure function of the registry's plan (GrowthBook's hashing), portable to any SDK"},
	{pkg: "analysis", may: []string{"experiment"},
		why: "the statistics take sufficient statistics, never rows or a database"},
	{pkg: "analysis/did", may: []string{},
		why: "difference-in-differences is math over a panel; lift did and the API route feed it"},
	{pkg: "analysis/synth", may: []string{},
		why: "synthetic control is math over a panel"},
	{pkg: "analysis/uplift", may: []string{"analysis", "experiment"},
		why: "uplift models are math over unit rows; lift uplift and the API route feed them"},
	{pkg: "analysis/bandit", may: []string{"experiment", "assign"},
		why: "bandit allocation and its estimators are math over sums; a unit's arm uses assign's hash so any SDK can recompute it"},
	{pkg: "privacy", may: []string{"experiment"},
		why: "DP releases and the ε ledger's contract; the ledger's storage implements privacy's interface, not the reverse"},
	{pkg: "privacy/privacytest", may: []string{"experiment", "privacy"},
		why: "the ledger conformance checks run against any store through privacy's interface"},
	{pkg: "metric", may: []string{"experiment", "analysis"},
		why: "the engine contract and the plan are dialect-free: no engine, no SQL, no store"},
	{pkg: "metric/metrictest", may: []string{"experiment", "analysis", "metric"},
		why: "the conformance suite sees an engine only through the metric.Engine contract"},
	{pkg: "metric/duckdb", not: []string{"metric/clickhouse/...", "api", "cmd/...", "jobs", "journey", "reports"}, soon: true,
		why: "an engine renders a plan in its SQL; definitions arrive resolved, and the server's layers sit above it"},
	{pkg: "metric/clickhouse/...", not: []string{"metric/duckdb", "store", "api", "cmd/...", "jobs", "journey", "reports"},
		why: "an engine renders a plan in its SQL; it never reads the registry (definitions arrive resolved)"},
	{pkg: "results", not: []string{"store", "api", "cmd/...", "jobs", "journey", "reports", "metric/duckdb", "metric/clickhouse/..."},
		why: "the results service depends on the metric.Engine contract and small consumer-side interfaces, not on one engine"},
	{pkg: "scorer/...", not: ioPackages,
		why: "the scorer's test binary is carried to a GPU machine: it must not pull DuckDB or the server"},
	{pkg: "reports", may: []string{"experiment"},
		why: "rendering takes finished numbers; the compositions that gather them live in api"},
	{pkg: "store", not: []string{"api", "cmd/...", "jobs", "journey", "reports", "scorer/...", "privacy", "metric/clickhouse/..."},
		why: "the transactional state and the append logs sit below every service that uses them"},
	{pkg: "jobs", not: []string{"api", "cmd/...", "journey", "reports", "privacy", "scorer/..."},
		why: "the scheduler receives the digest builder and the journey comparison as functions (jobs.Deps), so it stays testable with a fake clock"},
	{pkg: "journey", not: []string{"api", "cmd/...", "jobs", "reports", "privacy"},
		why: "a decision needs assignment, the scorer and the logs, nothing of the server around it"},
	{pkg: "internal/groupcommit", may: []string{},
		why: "the group-commit loop is generic over its requests: it knows nothing of what it commits"},
	{pkg: "...", not: []string{"cmd/..."},
		why: "cmd/lift only parses flags and wires packages: behaviour that a command needs lives in a package others may import too"},
}

// A direct rule says which of our packages a package must not import itself,
// though it may depend on them through others (store reaches analysis's types
// through metric.Stats, but computes no statistics).
var directRules = []struct {
	pkg string
	not []string
	why string
}{
	{"store", []string{"analysis/...", "results"},
		"the store keeps state and append logs; statistics are the results service's, over the metric.Engine contract"},
}

// TestDirectImports applies directRules to the module's packages' own imports.
func TestDirectImports(t *testing.T) {
	for _, p := range listPackages(t) {
		for _, r := range directRules {
			if !match(r.pkg, rel(p.ImportPath)) {
				continue
			}
			for _, imp := range p.Imports {
				if (imp == module || strings.HasPrefix(imp, module+"/")) && matchAny(r.not, rel(imp)) {
					t.Errorf("%s imports %s: %s", rel(p.ImportPath), rel(imp), r.why)
				}
			}
		}
	}
}

// match reports whether the module-relative path p matches pattern (see layerRule).
func match(pattern, p string) bool {
	if pattern == "..." {
		return true
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return p == base || strings.HasPrefix(p, base+"/")
	}
	return p == pattern
}

func matchAny(patterns []string, p string) bool {
	return slices.ContainsFunc(patterns, func(pat string) bool { return match(pat, p) })
}

// checkLayers returns a line for every dependency that breaks a rule, and for every
// rule (not marked soon) that names no existing package. pkgs maps each package
// to the packages of ours it depends on, all module-relative.
func checkLayers(rules []layerRule, pkgs map[string][]string) []string {
	var bad []string
	names := make([]string, 0, len(pkgs))
	for p := range pkgs {
		names = append(names, p)
	}
	slices.Sort(names)
	for _, r := range rules {
		found := false
		for _, p := range names {
			if !match(r.pkg, p) {
				continue
			}
			found = true
			for _, imp := range pkgs[p] {
				if imp == p || match("internal/...", imp) && !match("internal/...", p) {
					continue // helpers under internal/ have their homes in TestImportHomes
				}
				switch {
				case r.may != nil && !matchAny(r.may, imp):
					bad = append(bad, fmt.Sprintf("%s depends on %s; it may depend only on %v: %s", p, imp, r.may, r.why))
				case matchAny(r.not, imp):
					bad = append(bad, fmt.Sprintf("%s depends on %s, which it must not: %s", p, imp, r.why))
				}
			}
		}
		if !found && !r.soon {
			bad = append(bad, fmt.Sprintf("rule for %s names no package: update the table", r.pkg))
		}
	}
	return bad
}

// TestLayers applies layerRules to the module's packages (their non-test
// dependencies, direct and indirect).
func TestLayers(t *testing.T) {
	pkgs := map[string][]string{}
	for _, p := range listPackages(t) {
		var ours []string
		for _, imp := range p.Deps {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				ours = append(ours, rel(imp))
			}
		}
		pkgs[rel(p.ImportPath)] = ours
	}
	for _, line := range checkLayers(layerRules, pkgs) {
		t.Error(line)
	}
	for _, r := range layerRules {
		if r.soon && !slices.ContainsFunc(keys(pkgs), func(p string) bool { return match(r.pkg, p) }) {
			t.Logf("rule for %s waits for the package", r.pkg)
		}
	}
}

func keys(m map[string][]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCheckLayers checks the checker on made-up modules, so that TestLayers
// passing means the rules hold, not that the checker sees nothing.
func TestCheckLayers(t *testing.T) {
	rules := []layerRule{
		{pkg: "experiment", may: []string{}, why: "bottom"},
		{pkg: "store", not: []string{"api", "cmd/..."}, why: "below"},
		{pkg: "metric/duckdb", not: []string{"store"}, soon: true, why: "engine"},
		{pkg: "...", not: []string{"cmd/..."}, why: "main"},
	}
	cases := []struct {
		name string
		pkgs map[string][]string
		want []string // substrings of the problems, in order
	}{
		{"clean", map[string][]string{"experiment": nil, "store": {"experiment"}, "api": {"store", "experiment"}}, nil},
		{"bottom imports up", map[string][]string{"experiment": {"store"}, "store": nil},
			[]string{"experiment depends on store; it may depend only on []"}},
		{"store imports api", map[string][]string{"experiment": nil, "store": {"api"}, "api": nil},
			[]string{"store depends on api, which it must not"}},
		{"subpackage pattern", map[string][]string{"experiment": nil, "store": {"cmd/lift/x"}, "cmd/lift/x": nil},
			[]string{"store depends on cmd/lift/x, which it must not", "store depends on cmd/lift/x, which it must not: main"}},
		{"rule waiting for its package bites when it lands", map[string][]string{"experiment": nil, "store": nil, "metric/duckdb": {"store"}},
			[]string{"metric/duckdb depends on store"}},
		{"internal helpers are not layers", map[string][]string{"experiment": {"internal/groupcommit"}, "store": nil}, nil},
		{"stale rule", map[string][]string{"experiment": nil},
			[]string{"rule for store names no package"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := checkLayers(rules, c.pkgs)
			if len(got) != len(c.want) {
				t.Fatalf("got %q, want %d problems like %q", got, len(c.want), c.want)
			}
			for i, w := range c.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("problem %d: %q, want it to contain %q", i, got[i], w)
				}
			}
		})
	}
}
