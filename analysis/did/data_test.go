package did

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/internal/refdata"
)

// ckColumns is the column order of Card's public.dat (codebook in njmin.zip).
var ckColumns = strings.Fields(`sheet chain co_owned state southj centralj northj pa1 pa2 shore ncalls empft emppt nmgrs wage_st inctime firstinc bonus pctaff meals open hrsopen psoda pfry pentree nregs nregs11 type2 status2 date2 ncalls2 empft2 emppt2 nmgrs2 wage_st2 inctime2 firstin2 special2 meals2 open2r hrsopen2 psoda2 pfry2 pentree2 nregs2 nregs112`)

// ckStore is one store of Card & Krueger's survey; missing values are NaN.
type ckStore map[string]float64

func loadCK(t testing.TB) []ckStore {
	t.Helper()
	f, err := os.Open(refdata.File(t, "card-krueger-public.dat"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []ckStore
	sc := bufio.NewScanner(f)
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Fields(sc.Text())
		if len(fs) == 0 {
			continue
		}
		if len(fs) != len(ckColumns) {
			t.Fatalf("public.dat line %d: %d fields, want %d", line, len(fs), len(ckColumns))
		}
		s := ckStore{}
		for i, v := range fs {
			if v == "." {
				s[ckColumns[i]] = nan
				continue
			}
			x, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("public.dat line %d column %s: %v", line, ckColumns[i], err)
			}
			s[ckColumns[i]] = x
		}
		out = append(out, s)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// fte is full-time-equivalent employment, empft + nmgrs + 0.5·emppt (Card &
// Krueger 1994, Table 3 note); suffix "" for wave 1 and "2" for wave 2.
func (s ckStore) fte(wave string) float64 {
	return s["empft"+wave] + s["nmgrs"+wave] + 0.5*s["emppt"+wave]
}

// loadCSV reads a comma-separated file with a header into named columns;
// "NA" and "" become NaN.
func loadCSV(t testing.TB, name string) map[string][]float64 {
	t.Helper()
	f, err := os.Open(refdata.File(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	var header []string
	cols := map[string][]float64{}
	line := 0
	for sc.Scan() {
		line++
		fs := strings.Split(strings.TrimRight(sc.Text(), "\r"), ",")
		if header == nil {
			for _, h := range fs {
				header = append(header, strings.Trim(h, `"`))
			}
			continue
		}
		for i, v := range fs {
			x := nan
			if v != "NA" && v != "" {
				if x, err = strconv.ParseFloat(v, 64); err != nil {
					t.Fatalf("%s line %d column %s: %v", name, line, header[i], err)
				}
			}
			cols[header[i]] = append(cols[header[i]], x)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cols
}
