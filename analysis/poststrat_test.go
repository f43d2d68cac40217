package analysis

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/internal/refdata"
)

// gbstatsCells reads the cells of testdata/gbstats-post-stratification.csv.
func gbstatsCells(t *testing.T) ([]PSCell, []refdata.Row) {
	t.Helper()
	var cells []PSCell
	var expected []refdata.Row
	for _, r := range refdata.Table(t, "gbstats-post-stratification.csv") {
		if r["kind"] == "expected" {
			expected = append(expected, r)
			continue
		}
		arm := func(s string) PSArm {
			return PSArm{N: r.Float(t, "n_"+s), Y: r.Float(t, "y_"+s), YY: r.Float(t, "yy_"+s), X: r.Float(t, "x_"+s), XX: r.Float(t, "xx_"+s), XY: r.Float(t, "xy_"+s)}
		}
		cells = append(cells, PSCell{Name: r["cell"], Control: arm("a"), Treated: arm("b")})
	}
	return cells, expected
}

// TestPostStratifyGBStats checks GrowthBook's published vectors of
// EffectMomentsPostStratification (testdata/gbstats-post-stratification.csv):
// plain post-stratification and CUPEDps, absolute and relative, estimate and
// standard error, to 1e-9 relative (GrowthBook's test rounds to 5 decimals).
func TestPostStratifyGBStats(t *testing.T) {
	cells, expected := gbstatsCells(t)
	if len(cells) != 5 || len(expected) != 4 {
		t.Fatalf("testdata: %d cells and %d expected rows", len(cells), len(expected))
	}
	for _, e := range expected {
		cuped, relative := e["cuped"] == "1", e["relative"] == "1"
		got, err := PostStratify(cells, cuped, 0.05, 0)
		if err != nil {
			t.Fatal(err)
		}
		eff := got.Absolute
		if relative {
			eff = *got.Relative
		}
		name := map[bool]string{false: "post-stratified", true: "CUPEDps"}[cuped] + map[bool]string{false: " absolute", true: " relative"}[relative]
		for _, c := range []struct {
			what      string
			got, want float64
		}{{"estimate", eff.Estimate, e.Float(t, "estimate")}, {"se", eff.SE, e.Float(t, "se")}} {
			if math.Abs(c.got-c.want) > 1e-9*math.Abs(c.want) {
				t.Errorf("%s %s = %.17g, GrowthBook %.17g", name, c.what, c.got, c.want)
			}
		}
		if got.CUPED != cuped || got.Cells != 5 || got.Merged != 0 || (cuped && got.Adjusted != 5) {
			t.Errorf("%s: %+v", name, got)
		}
		// The normal interval from the estimate and SE.
		if w := eff.Estimate + 1.959963984540054*eff.SE; math.Abs(eff.CIHigh-w) > 1e-12*math.Abs(w) {
			t.Errorf("%s ci_high %v, want %v", name, eff.CIHigh, w)
		}
	}
}

// TestPostStratifyShift: the same units with y shifted by 100 and x by −30,
// the y shift passed as shift, give the same absolute and relative effects
// (the regression and the weights do not depend on the origin).
func TestPostStratifyShift(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const sy, sx = 100.0, -30.0
	var raw, moved []PSCell
	for k := range 4 {
		var c, m PSCell
		c.Name, m.Name = string(rune('a'+k)), string(rune('a'+k))
		for i := range 200 + 50*k {
			x := rng.NormFloat64()*2 + float64(k)
			w := i%3 == 1
			y := 3 + 0.8*x + float64(k) + rng.NormFloat64()
			if w {
				y += 0.5
			}
			ac, am := &c.Control, &m.Control
			if w {
				ac, am = &c.Treated, &m.Treated
			}
			ac.add(PSArm{N: 1, Y: y, YY: y * y, X: x, XX: x * x, XY: x * y})
			ys, xs := y-sy, x-sx
			am.add(PSArm{N: 1, Y: ys, YY: ys * ys, X: xs, XX: xs * xs, XY: xs * ys})
		}
		raw, moved = append(raw, c), append(moved, m)
	}
	for _, cuped := range []bool{false, true} {
		want, err := PostStratify(raw, cuped, 0.05, 0)
		if err != nil {
			t.Fatal(err)
		}
		got, err := PostStratify(moved, cuped, 0.05, sy)
		if err != nil {
			t.Fatal(err)
		}
		if want.Relative == nil || got.Relative == nil || (cuped && want.Adjusted != 4) {
			t.Fatalf("cuped %v: %+v %+v", cuped, want, got)
		}
		for _, c := range [][2]float64{{got.Absolute.Estimate, want.Absolute.Estimate}, {got.Absolute.SE, want.Absolute.SE},
			{got.Relative.Estimate, want.Relative.Estimate}, {got.Relative.SE, want.Relative.SE}} {
			if math.Abs(c[0]-c[1]) > 1e-9*math.Abs(c[1]) {
				t.Errorf("cuped %v: shifted %v, unshifted %v", cuped, c[0], c[1])
			}
		}
		// CUPED on a covariate that predicts y narrows the interval.
		if cuped {
			plain, _ := PostStratify(raw, false, 0.05, 0)
			if want.Absolute.SE >= plain.Absolute.SE {
				t.Errorf("CUPEDps SE %v not below post-stratification's %v", want.Absolute.SE, plain.Absolute.SE)
			}
		}
	}
}

// TestPostStratifyMergesSmallCells: a cell with one treated unit joins the
// largest cell (gbstats' combine_cells_for_analysis), and an arm without
// variance overall is InsufficientData.
func TestPostStratifyMergesSmallCells(t *testing.T) {
	cells, _ := gbstatsCells(t)
	small := PSCell{Name: "tiny", Control: PSArm{N: 3, Y: 30, YY: 310, X: 3, XX: 5, XY: 32}, Treated: PSArm{N: 1, Y: 12, YY: 144, X: 1, XX: 1, XY: 12}}
	got, err := PostStratify(append(cells, small), true, 0.05, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cells != 5 || got.Merged != 1 {
		t.Errorf("cells %d merged %d, want 5 and 1", got.Cells, got.Merged)
	}
	// The same as adding the tiny cell's sums to the largest cell (index 4) by hand.
	byHand := append([]PSCell(nil), cells...)
	byHand[4].Control.add(small.Control)
	byHand[4].Treated.add(small.Treated)
	want, err := PostStratify(byHand, true, 0.05, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got.Absolute != want.Absolute {
		t.Errorf("merged %+v, by hand %+v", got.Absolute, want.Absolute)
	}
	flat := []PSCell{{Name: "x", Control: PSArm{N: 5, Y: 5, YY: 5}, Treated: PSArm{N: 5, Y: 7, YY: 11}}}
	if _, err := PostStratify(flat, false, 0.05, 0); err == nil {
		t.Error("a control arm without variance: no error")
	}
}
