package archtest

import (
	"encoding/json"
	"go/parser"
	"go/token"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/liftlab/lift"

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", module+"/...")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var pkgs []pkg
	dec := json.NewDecoder(out)
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	return pkgs
}

// homes maps an outside library (import path prefix) to the only packages of this
// module that may import it directly.
var homes = map[string][]string{
	"github.com/marcboeker/go-duckdb":         {"store", "metric/duckdb"}, // metric/duckdb: the only metric engine on DuckDB
	"github.com/ClickHouse/clickhouse-go":     {"metric/clickhouse"},      // and its subpackages (cluster harness)
	"github.com/labstack/echo":                {"api"},
	"github.com/google/differential-privacy":  {"privacy"},
	"gonum.org/v1/plot":                       {"reports"},
	"github.com/go-co-op/gocron":              {"jobs"},
	"github.com/growthbook/growthbook-golang": {"assign"}, // benchmarks only
	"github.com/ClickHouse/clickhouse-go":     {"metric/clickhouse"},
	"github.com/ClickHouse/ch-go":             {"metric/clickhouse"},
	"github.com/go-faster/city":               {"metric/clickhouse"}, // the sharding key's hash
	module + "/internal/refdata":              {},                    // tests only (_test.go files are not listed in Imports)
	// The one group-commit loop: the append logs of store use it, and the
	// forwarding of committed exposure groups to a warehouse may.
	module + "/internal/groupcommit": {"store", "metric/clickhouse"},
}

// pure packages may not depend (even indirectly) on these.
var pure = map[string][]string{
	"experiment":        {"github.com/", "gonum.org/", "golang.org/x/", "database/sql", "net/http", "os/exec"},
	"assign":            {"github.com/marcboeker", "database/sql", "net/http"},
	"analysis":          {"github.com/", "database/sql", "net/http", "os/exec"},
	"analysis/did":      {"github.com/", "database/sql", "net/http", "os/exec"},
	"analysis/synth":    {"github.com/", "database/sql", "net/http", "os/exec"},
	"analysis/uplift":   {"github.com/", "database/sql", "net/http", "os/exec"},
	"metric":            {"github.com/", "database/sql", "net/http", "os/exec"},
	"metric/metrictest": {"github.com/", "database/sql", "net/http", "os/exec"},
	// The loop knows nothing of what it commits: standard library only.
	"internal/groupcommit": {"github.com/", "gonum.org/", "golang.org/x/", "database/sql", "net/http", "os/exec"},
	"scorer":               {"github.com/marcboeker", "database/sql"},
}

func rel(path string) string {
	return strings.TrimPrefix(strings.TrimPrefix(path, module), "/")
}

func TestImportHomes(t *testing.T) {
	for _, p := range listPackages(t) {
		r := rel(p.ImportPath)
		for _, imp := range p.Imports {
			for lib, allowed := range homes {
				if !strings.HasPrefix(imp, lib) {
					continue
				}
				ok := false
				for _, a := range allowed {
					if r == a || strings.HasPrefix(r, a+"/") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s; only %v may", r, imp, allowed)
				}
			}
		}
		if forbidden, ok := pure[r]; ok {
			for _, d := range p.Deps {
				for _, f := range forbidden {
					if strings.HasPrefix(d, f) && !strings.HasPrefix(d, "gonum.org/v1/gonum") && !strings.HasPrefix(d, module) {
						if r == "experiment" || !strings.HasPrefix(d, "golang.org/x/exp") {
							t.Errorf("%s depends on %s, which it must stay free of", r, d)
						}
					}
				}
			}
		}
	}
}

func TestPackageDocs(t *testing.T) {
	fset := token.NewFileSet()
	for _, p := range listPackages(t) {
		found := false
		for _, f := range p.GoFiles {
			af, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.PackageClauseOnly|parser.ParseComments)
			if err != nil {
				t.Fatal(err)
			}
			if af.Doc != nil && strings.TrimSpace(af.Doc.Text()) != "" {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("package %s has no package doc comment", p.ImportPath)
		}
	}
}

// layers says which of this module's packages a package may not depend on, even
// indirectly, and why. A rule whose package does not exist yet applies as soon
// as it does. Paths are relative to the module; a rule for "p" covers p and its
// subpackages, and so does a forbidden path.
var layers = []struct {
	pkg       string
	forbidden []string
	why       string
}{
	{"experiment", []string{""}, "the domain types are at the bottom: every package may use them, so they use none"},
	{"analysis", []string{"store", "api", "jobs", "journey", "reports", "metric", "cmd"}, "estimators are pure functions of sums and panels, testable against references without a database"},
	{"assign", []string{"store", "api", "jobs", "journey", "cmd"}, "assignment is a pure hash, identical in every SDK"},
	{"privacy", []string{"store", "api", "jobs", "journey", "metric", "cmd"}, "the DP mechanisms see statistics and a ledger contract, never a database"},
	{"reports", []string{"store", "api", "jobs", "journey", "metric", "cmd"}, "reports render results they are given"},
	{"scorer", []string{"store", "api", "jobs", "journey", "cmd"}, "the scorer's test binary travels to a GPU machine without DuckDB"},
	{"metric", []string{"store", "api", "jobs", "journey", "reports", "cmd"}, "the metric engine contract is dialect-free: engines depend on it, not it on them"},
	{"metric/metrictest", []string{"metric/duckdb", "metric/clickhouse", "store"}, "the conformance suite is engine-independent; each engine's test runs it"},
	{"store", []string{"api", "jobs", "journey", "reports", "privacy", "scorer", "metric/clickhouse", "cmd"}, "the store holds state; the layers above compose it"},
	{"jobs", []string{"api", "cmd"}, "the scheduler runs the services, it does not serve HTTP"},
	{"journey", []string{"api", "cmd"}, "journeys are served by the API, not the other way round"},
	{"api", []string{"cmd"}, "nothing imports a main package"},
}

// under reports whether path (relative to the module) is p or inside p; "" is
// every package of the module.
func under(path, p string) bool {
	return p == "" || path == p || strings.HasPrefix(path, p+"/")
}

func TestLayers(t *testing.T) {
	pkgs := listPackages(t)
	for _, l := range layers {
		for _, p := range pkgs {
			r := rel(p.ImportPath)
			if !under(r, l.pkg) {
				continue
			}
			for _, d := range p.Deps {
				if !strings.HasPrefix(d, module+"/") {
					continue
				}
				dr := rel(d)
				if under(dr, l.pkg) || under(dr, "internal") {
					continue
				}
				for _, f := range l.forbidden {
					if under(dr, f) {
						t.Errorf("%s depends on %s: %s", r, dr, l.why)
					}
				}
			}
		}
	}
}

func TestUnder(t *testing.T) {
	for _, c := range []struct {
		path, p string
		want    bool
	}{
		{"metric", "metric", true},
		{"metric/duckdb", "metric", true},
		{"metrics", "metric", false},
		{"store", "", true},
		{"analysis/did", "analysis/uplift", false},
	} {
		if got := under(c.path, c.p); got != c.want {
			t.Errorf("under(%q, %q) = %v, want %v", c.path, c.p, got, c.want)
		}
	}
}
