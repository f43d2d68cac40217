package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/liftlab/lift/analysis"
	"github.com/liftlab/lift/internal/refdata"
)

// TestUpliftHillstrom runs "lift uplift" on the MineThatData e-mail test,
// Womens e-mail vs no e-mail, outcome visit.
func TestUpliftHillstrom(t *testing.T) {
	if testing.Short() {
		t.Skip("fits boosted trees on 30,000 rows; skipped with -short")
	}
	data := refdata.File(t, "hillstrom.csv")
	args := []string{"uplift", "--data", data, "--treatment", "segment", "--control", "No E-Mail", "--treated", "Womens E-Mail",
		"--outcome", "visit", "--features", "recency,history,mens,womens,zip_code,newbie,channel", "--rounds", "60", "--depth", "3", "--min-leaf", "100"}
	code, stdout, stderr := runQuasi(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, k := range []string{`"ate"`, `"estimate"`, `"se"`, `"ci_low"`, `"ci_high"`, `"qini"`, `"auuc"`, `"deciles"`, `"policy"`} {
		if !strings.Contains(stdout, k) {
			t.Errorf("output lacks key %s", k)
		}
	}
	var got upliftOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	// ate must be analysis.WelchFromSamples on the two arms, read here independently.
	f, err := os.Open(data)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var tr, ct []float64
	for _, r := range recs[1:] {
		v, _ := strconv.ParseFloat(r[9], 64) // visit
		switch r[8] {                        // segment
		case "Womens E-Mail":
			tr = append(tr, v)
		case "No E-Mail":
			ct = append(ct, v)
		}
	}
	want, err := analysis.WelchFromSamples(tr, ct, 0.05)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want float64
	}{{"estimate", got.ATE.Estimate, want.Estimate}, {"se", got.ATE.SE, want.SE}, {"ci_low", got.ATE.CILow, want.CILow}, {"ci_high", got.ATE.CIHigh, want.CIHigh}} {
		if math.Abs(c.got-c.want) > 1e-12 {
			t.Errorf("ate.%s = %.12g, WelchFromSamples gives %.12g", c.what, c.got, c.want)
		}
	}
	// Hillstrom's published visit rates (testdata/hillstrom-2008-arm-means.csv),
	// 15.1% vs 10.6%: ATE 0.045 ± 0.001 (the rounding of the two rates).
	pub := map[string]float64{}
	for _, r := range refdata.Table(t, "hillstrom-2008-arm-means.csv") {
		pub[r["segment"]] = r.Float(t, "visit")
	}
	if want := pub["Womens E-Mail"] - pub["No E-Mail"]; math.Abs(got.ATE.Estimate-want) > 0.001 {
		t.Errorf("ATE %.4f, want %.3f (Hillstrom 2008: published visit rates)", got.ATE.Estimate, want)
	}
	// Learned uplift beats random targeting on the held-out rows (see the
	// analysis/uplift Hillstrom test for why the Womens arm is the one to use).
	// The split is random: over split seeds 1–5 with these settings the Qini
	// was 0.18, 0.14, 0.08, 0.14, 0.16 and its 95% interval excluded 0 for all
	// but seed 3 (lower bound −0.003). This test uses the default seed, 1.
	if got.QiniLow == nil || !(got.Qini > 0 && *got.QiniLow > 0) {
		t.Errorf("Qini %.4f, interval %v–%v; want above 0", got.Qini, deref(got.QiniLow), deref(got.QiniHigh))
	}
	if len(got.Deciles) != 10 || len(got.Policy) != 10 || got.NTrain+got.NTest != len(tr)+len(ct) {
		t.Errorf("%d deciles, %d policy rows, %d+%d rows; want 10, 10, %d", len(got.Deciles), len(got.Policy), got.NTrain, got.NTest, len(tr)+len(ct))
	}
	// Treating everyone is what random targeting of 100% gives; targeting the
	// top 10% must gain over treating no one (the decile-1 uplift is positive).
	last := got.Policy[len(got.Policy)-1]
	if last.Fraction != 1 || math.Abs(last.Value-last.Random) > 1e-12 {
		t.Errorf("policy at 100%%: %+v; want value = random value", last)
	}
	if first := got.Policy[0]; first.Fraction != 0.1 || first.GainLow == nil || !(*first.GainLow > 0) {
		t.Errorf("policy at 10%%: %+v; want a gain with an interval above 0", first)
	}
	// The same seed gives the same output, byte for byte.
	code, again, _ := runQuasi(t, args...)
	if code != 0 || again != stdout {
		t.Error("a second run with the same seed printed different output")
	}
}

// TestUpliftOneHot: text features are one-hot encoded, other arms are left
// out, and a linear T-learner recovers an effect that depends on the text
// feature only: τ = 2 in region "north", 0 in "south".
func TestUpliftOneHot(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("arm,region,age,y\n")
	for i := 0; i < 2000; i++ {
		arm := []string{"ctl", "mail", "sms"}[rng.IntN(3)]
		region := []string{"north", "south"}[rng.IntN(2)]
		age := 20 + rng.IntN(50)
		y := 0.05*float64(age) + rng.NormFloat64()
		if arm == "mail" && region == "north" {
			y += 2
		}
		fmt.Fprintf(&b, "%s,%s,%d,%.4f\n", arm, region, age, y)
	}
	data := writeTemp(t, "u.csv", b.String())
	code, stdout, stderr := runQuasi(t, "uplift", "--data", data, "--treatment", "arm", "--control", "ctl", "--treated", "mail",
		"--outcome", "y", "--features", "region,age", "--learner", "t", "--base", "ridge", "--bootstrap", "50")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var got upliftOutput
	if err := json.Unmarshal([]byte(stdout), &got); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Features, ",") != "region=north,region=south,age" {
		t.Errorf("features %v", got.Features)
	}
	// About 2/3 of 2000 rows are ctl or mail; half of mail is north: ATE ≈ 1.
	if got.NTrain+got.NTest < 1200 || got.NTrain+got.NTest > 1450 || math.Abs(got.ATE.Estimate-1) > 4*got.ATE.SE {
		t.Errorf("rows %d, ATE %.3f ± %.3f; want about 1333 rows and ATE ≈ 1", got.NTrain+got.NTest, got.ATE.Estimate, got.ATE.SE)
	}
	// The ranking is perfect in region, so the top half of the deciles hold
	// north (predicted ≈ 2) and the bottom south (≈ 0).
	if d := got.Deciles; math.Abs(d[0].Predicted-2) > 0.3 || math.Abs(d[9].Predicted) > 0.3 {
		t.Errorf("decile 1 predicted %.3f, decile 10 %.3f; want ≈ 2 and ≈ 0", d[0].Predicted, d[9].Predicted)
	}
}

func TestUpliftErrors(t *testing.T) {
	good := "arm,x,y\nA,1,0\nB,2,1\nA,3,1\nB,4,0\n"
	for _, c := range []struct {
		name, body string
		args       []string
		want       string
	}{
		{"missing features", good, []string{"--treatment", "arm", "--outcome", "y"}, "--features: is required"},
		{"no control named", good, []string{"--treatment", "arm", "--outcome", "y", "--features", "x"}, `--control: is required: the arm column has values "A", "B"`},
		{"unknown arm", good, []string{"--treatment", "arm", "--outcome", "y", "--features", "x", "--control", "A", "--treated", "C"}, `no row has arm "C"`},
		{"bad outcome", strings.Replace(good, "B,2,1", "B,2,yes", 1), []string{"--treatment", "arm", "--outcome", "y", "--features", "x", "--control", "A"}, `line 3, column "y": "yes" is not a finite number`},
		{"missing feature", strings.Replace(good, "A,3,1", "A,NA,1", 1), []string{"--treatment", "arm", "--outcome", "y", "--features", "x", "--control", "A"}, `line 4, column "x": missing value`},
		{"bad learner", good, []string{"--treatment", "arm", "--outcome", "y", "--features", "x", "--control", "A", "--learner", "r"}, "--learner: must be t, s or x"},
		{"too few rows", good, []string{"--treatment", "arm", "--outcome", "y", "--features", "x", "--control", "A"}, "too few to split"},
	} {
		t.Run(c.name, func(t *testing.T) {
			data := writeTemp(t, "u.csv", c.body)
			code, _, stderr := runQuasi(t, append([]string{"uplift", "--data", data}, c.args...)...)
			if code != 1 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, stderr, c.want)
			}
		})
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return math.NaN()
	}
	return *p
}
