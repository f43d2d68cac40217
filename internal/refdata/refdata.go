// Package refdata finds the data that the reference tests check published
// results against. Tests only import it (internal/archtest checks that no
// package does).
//
// Three kinds of file, three places:
//
//   - testdata/NAME at the repository root: what the repository carries, the
//     published numbers (papers' tables, peers' published test vectors) with
//     their citations. [Testdata] and [Table] fail the test when one is
//     missing: every clone has them.
//   - Micro-data from other repositories whose terms are not ours to pass on
//     (Card & Krueger, Hillstrom, LaLonde, Proposition 99). The repository does
//     not carry them: [File] finds them in the folder named by
//     $LIFT_REFERENCE_DATA, by default ../shared/peer-data beside the repository
//     root, and otherwise skips the test naming the file, where it looked and
//     where to get it. With LIFT_REQUIRE_REFERENCE_DATA=1 (CI sets it) a missing
//     file fails the test instead.
//   - GrowthBook's cross-SDK spec cases, which ship in the growthbook-golang
//     module the tests already depend on: [GoModuleFile] resolves the module's
//     directory through the Go toolchain.
//
// testdata/README.md lists every reference test, its data and its target.
package refdata

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// EnvDir names the folder that holds the reference micro-data.
const EnvDir = "LIFT_REFERENCE_DATA"

// EnvRequire, set to 1, turns a missing reference file into a test failure.
const EnvRequire = "LIFT_REQUIRE_REFERENCE_DATA"

// sources says where each reference file comes from, for the skip message and
// testdata/README.md (which gives the commits and checksums).
var sources = map[string]string{
	"card-krueger-public.dat":      "David Card's public replication file public.dat of Card & Krueger (1994), in njmin.zip on his Berkeley data page",
	"card-krueger-mhe-long.csv":    "Card & Krueger's survey in long form (id, nj, d, d_nj, fte) from Angrist & Pischke's Mostly Harmless Econometrics data archive",
	"hillstrom.csv":                "Kevin Hillstrom's MineThatData E-Mail Analytics and Data Mining Challenge (2008), 64,000 rows; redistributed by scikit-uplift and causalml",
	"lalonde-nswre74-treated.tsv":  "nswre74_treated.txt from Rajeev Dehejia's NBER data page (Dehejia & Wahba 1999), tab-separated",
	"lalonde-nswre74-controls.tsv": "nswre74_controls.txt from Rajeev Dehejia's NBER data page (Dehejia & Wahba 1999), tab-separated",
	"california-prop99.csv":        "Abadie, Diamond & Hainmueller's (2010) Proposition 99 panel, as shipped by R's Synth package and pysyncon",
}

// Known lists the reference files this package knows the source of.
func Known() []string {
	names := make([]string, 0, len(sources))
	for n := range sources {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Root returns the repository root: the nearest folder holding go.mod at or
// above the working directory (go test runs in the package's folder).
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("refdata: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// Testdata returns the path of testdata/NAME at the repository root. The
// repository carries these files, so a missing one fails the test.
func Testdata(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Root(t), "testdata", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("refdata: testdata/%s: %v", name, err)
	}
	return p
}

// Dir returns the folder searched for reference files: $LIFT_REFERENCE_DATA,
// or ../shared/peer-data beside the repository root.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv(EnvDir); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(Root(t)), "shared", "peer-data")
}

// File returns the path of the reference file NAME in [Dir]. When it is absent
// the test is skipped with a message naming the file, the folder searched and
// the file's source (or fails, with LIFT_REQUIRE_REFERENCE_DATA=1). NAME must
// be one of [Known].
func File(t testing.TB, name string) string {
	t.Helper()
	p, missing, err := find(Dir(t), name)
	switch {
	case err != nil:
		t.Fatal(err)
	case missing != "" && os.Getenv(EnvRequire) == "1":
		t.Fatalf("%s=1: %s", EnvRequire, missing)
	case missing != "":
		t.Skip(missing)
	}
	return p
}

// find looks for NAME in DIR. It returns the path, or the message that says
// what is missing and where to get it, or an error for a name it does not know.
func find(dir, name string) (path, missing string, err error) {
	src, ok := sources[name]
	if !ok {
		return "", "", fmt.Errorf("refdata: %s is not a known reference file; add its source to internal/refdata and testdata/README.md", name)
	}
	p := filepath.Join(dir, name)
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
		return p, "", nil
	}
	return "", fmt.Sprintf("reference file %s not found in %s (set %s to a folder holding it); it is %s; see testdata/README.md",
		name, dir, EnvDir, src), nil
}

// GoModuleFile returns the path of NAME inside the directory of the Go module
// MODULE at the version go.mod requires, as `go list -m` resolves it (the
// module cache). The test's own build already downloaded any module it
// imports, so a failure here is a failure, not a skip.
func GoModuleFile(t testing.TB, module, name string) string {
	t.Helper()
	// go test puts its own $GOROOT/bin first on the test's PATH.
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("refdata: no go command to resolve %s: %v", module, err)
	}
	cmd := exec.Command(gobin, "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = Root(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("refdata: go list -m %s: %v: %s", module, err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	if dir == "" {
		t.Fatalf("refdata: module %s is not in the module cache (go mod download %s)", module, module)
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("refdata: %s: %v", name, err)
	}
	return p
}

// Table reads testdata/NAME, a comma-separated file whose lines starting with
// '#' are its citation, with a header line, into one map per row.
func Table(t testing.TB, name string) []Row {
	t.Helper()
	f, err := os.Open(Testdata(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := readTable(f)
	if err != nil {
		t.Fatalf("testdata/%s: %v", name, err)
	}
	return rows
}

// Row is one row of a [Table], by column name.
type Row map[string]string

// Float returns column COL of the row as a number, failing the test when it
// is absent or not a number.
func (r Row) Float(t testing.TB, col string) float64 {
	t.Helper()
	s, ok := r[col]
	if !ok {
		t.Fatalf("refdata: no column %q in %v", col, r)
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("refdata: column %q: %v", col, err)
	}
	return v
}

func readTable(r io.Reader) ([]Row, error) {
	cr := csv.NewReader(r)
	cr.Comment = '#'
	recs, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(recs) < 2 {
		return nil, fmt.Errorf("a header and at least one row expected, got %d lines", len(recs))
	}
	rows := make([]Row, 0, len(recs)-1)
	for _, rec := range recs[1:] {
		row := Row{}
		for i, h := range recs[0] {
			row[h] = rec[i]
		}
		rows = append(rows, row)
	}
	return rows, nil
}
