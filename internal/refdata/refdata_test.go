package refdata

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFind(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hillstrom.csv"), []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "card-krueger-public.dat"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path string
		missing    []string // substrings of the skip message
		err        bool
	}{
		{name: "hillstrom.csv", path: filepath.Join(dir, "hillstrom.csv")},
		{name: "lalonde-nswre74-treated.tsv", missing: []string{"lalonde-nswre74-treated.tsv", dir, EnvDir, "Dehejia"}},
		// A folder of that name is not the file.
		{name: "card-krueger-public.dat", missing: []string{"card-krueger-public.dat", "njmin.zip"}},
		{name: "unknown.csv", err: true},
	} {
		p, missing, err := find(dir, c.name)
		if (err != nil) != c.err || p != c.path {
			t.Errorf("find(%s) = %q, %q, %v; want path %q, error %v", c.name, p, missing, err, c.path, c.err)
		}
		for _, s := range c.missing {
			if !strings.Contains(missing, s) {
				t.Errorf("find(%s): message %q lacks %q", c.name, missing, s)
			}
		}
		if len(c.missing) == 0 && missing != "" {
			t.Errorf("find(%s): unexpected message %q", c.name, missing)
		}
	}
}

func TestDir(t *testing.T) {
	t.Setenv(EnvDir, "/data/ref")
	if d := Dir(t); d != "/data/ref" {
		t.Errorf("Dir with %s set = %q", EnvDir, d)
	}
	t.Setenv(EnvDir, "")
	want := filepath.Join(filepath.Dir(Root(t)), "shared", "peer-data")
	if d := Dir(t); d != want {
		t.Errorf("Dir = %q, want %q", d, want)
	}
}

// Every known reference file and every file in testdata/ is listed in
// testdata/README.md.
func TestKnownAreDocumented(t *testing.T) {
	b, err := os.ReadFile(Testdata(t, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := Known()
	entries, err := os.ReadDir(filepath.Join(Root(t), "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "README.md" {
			names = append(names, e.Name())
		}
	}
	for _, n := range names {
		if !strings.Contains(string(b), "`"+n+"`") {
			t.Errorf("testdata/README.md does not list %s", n)
		}
	}
}

func TestGoModuleFile(t *testing.T) {
	p := GoModuleFile(t, "github.com/growthbook/growthbook-golang", "cases.json")
	if filepath.Base(p) != "cases.json" || !strings.Contains(p, "growthbook-golang@") {
		t.Errorf("GoModuleFile = %q", p)
	}
}

func TestReadTable(t *testing.T) {
	rows, err := readTable(strings.NewReader("# Author (2000), Table 1.\nrow,est\n1,2.5\n# note\n2,-1\n"))
	if err != nil || len(rows) != 2 || rows[0]["est"] != "2.5" || rows[1]["row"] != "2" {
		t.Fatalf("readTable = %v, %v", rows, err)
	}
	if got := rows[1].Float(t, "est"); got != -1 {
		t.Errorf("Float = %v, want -1", got)
	}
	for _, bad := range []string{"# only a citation\n", "a,b\n", "a,b\n1\n"} {
		if _, err := readTable(strings.NewReader(bad)); err == nil {
			t.Errorf("readTable(%q): no error", bad)
		}
	}
}
