package did

import (
	"math"
	"strconv"
	"testing"

	"github.com/liftlab/lift/internal/refdata"
)

// table3Row is one row of Card & Krueger (1994), Table 3, columns (i)–(iii).
type table3Row struct {
	pa, nj, diff Coef // Name, Estimate and SE only
}

// loadTable3 reads the published Table 3 (testdata/card-krueger-1994-table3.csv,
// which cites the paper), keyed by row number.
func loadTable3(t testing.TB) map[int]table3Row {
	t.Helper()
	out := map[int]table3Row{}
	for _, r := range refdata.Table(t, "card-krueger-1994-table3.csv") {
		out[int(r.Float(t, "row"))] = table3Row{
			pa:   Coef{Name: "PA", Estimate: r.Float(t, "pa"), SE: r.Float(t, "pa_se")},
			nj:   Coef{Name: "NJ", Estimate: r.Float(t, "nj"), SE: r.Float(t, "nj_se")},
			diff: Coef{Name: "NJ-PA", Estimate: r.Float(t, "diff"), SE: r.Float(t, "diff_se")},
		}
	}
	if len(out) != 5 {
		t.Fatalf("card-krueger-1994-table3.csv has %d rows, want 5", len(out))
	}
	return out
}

// TestCardKruegerTable3Published rebuilds Card & Krueger's (1994) Table 3,
// column (iii) (NJ − PA), from its published columns (i) and (ii) alone, so a
// clone without the micro-data still checks the 2×2 difference in differences
// 2.76 (1.36) of row 3. Every input is printed to two decimals, so each is off
// by up to 0.005 from the paper's unrounded value: a difference of two of them
// by 0.01, and the printed result by another 0.005, hence ±0.015 for estimates;
// √(a² + b²) moves by at most 0.005·(a + b)/√(a² + b²) when a and b each move
// by 0.005, plus 0.005 for the printed result.
func TestCardKruegerTable3Published(t *testing.T) {
	tab := loadTable3(t)
	const estTol = 0.015
	seTol := func(a, b Coef) float64 { return 0.005*(a.SE+b.SE)/math.Hypot(a.SE, b.SE) + 0.005 }
	for row := 1; row <= 5; row++ {
		r := tab[row]
		d := Difference("NJ-PA", r.nj, r.pa, 0)
		near(t, "row "+strconv.Itoa(row)+" difference", d.Estimate, r.diff.Estimate, estTol)
		near(t, "row "+strconv.Itoa(row)+" difference SE", d.SE, r.diff.SE, seTol(r.nj, r.pa))
		if d.CILow >= d.Estimate || d.CIHigh <= d.Estimate || d.PValue <= 0 || d.PValue >= 1 {
			t.Errorf("row %d: interval [%g, %g] p %g around %g", row, d.CILow, d.CIHigh, d.PValue, d.Estimate)
		}
	}

	// Row 3's changes are row 2 less row 1 in each state, and the difference in
	// differences of the four published cell means is row 3's 2.76: four
	// rounded inputs, so ±(4·0.005 + 0.005).
	c := Cells{
		ControlPre: Cell{Mean: tab[1].pa.Estimate}, TreatedPre: Cell{Mean: tab[1].nj.Estimate},
		ControlPost: Cell{Mean: tab[2].pa.Estimate}, TreatedPost: Cell{Mean: tab[2].nj.Estimate},
	}
	near(t, "DiD of the published cell means", c.DiD(), tab[3].diff.Estimate, 0.025)
	near(t, "PA change", tab[2].pa.Estimate-tab[1].pa.Estimate, tab[3].pa.Estimate, estTol)
	near(t, "NJ change", tab[2].nj.Estimate-tab[1].nj.Estimate, tab[3].nj.Estimate, estTol)

	// Row 3's normal-theory 95% interval, with z from
	// scipy.stats.norm.ppf(0.975) = 1.959963984540054.
	d := Difference("NJ-PA", tab[3].nj, tab[3].pa, 0.05)
	near(t, "row 3 CI low", d.CILow, d.Estimate-1.959963984540054*d.SE, 1e-9)
	near(t, "row 3 CI high", d.CIHigh, d.Estimate+1.959963984540054*d.SE, 1e-9)
}
