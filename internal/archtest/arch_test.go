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
	"github.com/labstack/echo":                {"api"},
	"github.com/google/differential-privacy":  {"privacy"},
	"gonum.org/v1/plot":                       {"reports"},
	"github.com/go-co-op/gocron":              {"jobs"},
	"github.com/growthbook/growthbook-golang": {"assign"}, // benchmarks only
	"github.com/ClickHouse/clickhouse-go":     {"metric/clickhouse"},
	"github.com/ClickHouse/ch-go":             {"metric/clickhouse"},
	"github.com/go-faster/city":               {"metric/clickhouse"}, // the sharding key's hash
	module + "/internal/refdata":              {},                    // tests only (_test.go files are not listed in Imports)
	module + "/internal/jsoncmp":              {},                    // tests only
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
	"analysis/bandit":   {"github.com/marcboeker", "database/sql", "net/http", "os/exec"},
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
