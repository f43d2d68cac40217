package als

import (
	"context"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/scorer"
)

func TestAUCMatchesMannWhitney(t *testing.T) {
	for _, c := range []struct {
		name     string
		pos, neg []float64
		// want is scipy 1.10: mannwhitneyu(pos, neg).statistic / (len(pos)*len(neg)).
		want float64
	}{
		// from scipy.stats import mannwhitneyu
		// pos=[0.9,0.8,0.8,0.7,0.3,0.55]; neg=[0.8,0.4,0.2,0.55,0.1]
		// mannwhitneyu(pos,neg).statistic/(6*5) → 0.7833333333333333
		{"ties across groups", []float64{0.9, 0.8, 0.8, 0.7, 0.3, 0.55}, []float64{0.8, 0.4, 0.2, 0.55, 0.1}, 0.7833333333333333},
		// mannwhitneyu([1,1],[1]).statistic/2 → 0.5
		{"all tied", []float64{1, 1}, []float64{1}, 0.5},
		// mannwhitneyu([3,4],[1,2,2.5]).statistic/6 → 1.0
		{"separated", []float64{3, 4}, []float64{1, 2, 2.5}, 1},
		// mannwhitneyu([1,2],[3,4,5]).statistic/6 → 0.0
		{"reversed", []float64{1, 2}, []float64{3, 4, 5}, 0},
	} {
		if got := AUC(c.pos, c.neg); math.Abs(got-c.want) > 1e-12 {
			t.Errorf("%s: AUC = %.15g, want %.15g (scipy)", c.name, got, c.want)
		}
	}
}

// The bootstrap interval's half width matches 1.96 standard errors of Hanley &
// McNeil (1982, Radiology 143, eq. 2) for two normal samples: SE² = (A(1−A) +
// (n₁−1)(Q₁−A²) + (n₀−1)(Q₂−A²)) / (n₁n₀), Q₁ = A/(2−A), Q₂ = 2A²/(1+A).
// The formula's Q's are exact for exponential scores and close for normal ones;
// 25% is far wider than the disagreement between the two (a few %).
func TestAUCIntervalMatchesHanleyMcNeil(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for _, c := range []struct {
		n1, n0 int
		shift  float64
	}{{400, 300, 0.5}, {2000, 500, 1}, {300, 300, 0}} {
		pos, neg := make([]float64, c.n1), make([]float64, c.n0)
		for i := range pos {
			pos[i] = rng.NormFloat64() + c.shift
		}
		for i := range neg {
			neg[i] = rng.NormFloat64()
		}
		a := AUC(pos, neg)
		lo, hi, err := aucInterval(context.Background(), pos, neg, MIAOptions{Bootstrap: 2000, Level: 0.95, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		q1, q2 := a/(2-a), 2*a*a/(1+a)
		n1, n0 := float64(c.n1), float64(c.n0)
		se := math.Sqrt((a*(1-a) + (n1-1)*(q1-a*a) + (n0-1)*(q2-a*a)) / (n1 * n0))
		if !(lo <= a && a <= hi) {
			t.Errorf("%+v: interval [%g, %g] does not contain AUC %g", c, lo, hi, a)
		}
		if half := (hi - lo) / 2; math.Abs(half-1.96*se) > 0.25*1.96*se {
			t.Errorf("%+v: bootstrap half width %.4f, Hanley-McNeil 1.96·SE = %.4f", c, half, 1.96*se)
		}
	}
}

// The gate flags a deliberately overfitted model (64 factors, λ = 0.01: it fits
// every training pair) and passes a regularized one (6 factors for 6 planted
// clusters, λ = 10), on the same data.
func TestMIAGate(t *testing.T) {
	ctx := context.Background()
	inter := planted(600, 40, 6, 12, 3)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name       string
		opts       Options
		deployable bool
	}{
		{"overfitted", Options{Factors: 64, Iterations: 10, Lambda: 0.01, Alpha: 40}, false},
		{"regularized", Options{Factors: 6, Iterations: 10, Lambda: 10, Alpha: 10}, true},
	} {
		m, card, err := Build(ctx, inter, BuildOptions{Options: c.opts, Name: "shop", Now: now, MIA: MIAOptions{Bootstrap: 300}})
		if err != nil {
			t.Fatal(err)
		}
		mi := card.Membership
		if mi == nil {
			t.Fatalf("%s: no membership-inference result on the card", c.name)
		}
		t.Logf("%s: AUC %.4f [%.4f, %.4f] over %d members, %d non-members", c.name, mi.AUC, mi.Low, mi.High, mi.Members, mi.NonMembers)
		if mi.Passed != c.deployable || (card.NotDeployable == "") != c.deployable || (m.NotDeployable() == "") != c.deployable {
			t.Errorf("%s: passed %v, card %q, model %q; want deployable %v", c.name, mi.Passed, card.NotDeployable, m.NotDeployable(), c.deployable)
		}
		if mi.MaxAUC != DefaultMaxMIAAUC || !(mi.Low <= mi.AUC && mi.AUC <= mi.High) {
			t.Errorf("%s: gate %g, interval [%g, %g] around %g", c.name, mi.MaxAUC, mi.Low, mi.High, mi.AUC)
		}
		if !c.deployable && !strings.Contains(card.Markdown(), "FAILED") {
			t.Errorf("%s: the Markdown card does not say the gate failed", c.name)
		}
		// The saved model keeps the verdict.
		path := t.TempDir() + "/shop.safetensors"
		if err := m.Save(ctx, path); err != nil {
			t.Fatal(err)
		}
		back, err := scorer.Load(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if back.NotDeployable() != m.NotDeployable() {
			t.Errorf("%s: reloaded model says %q, want %q", c.name, back.NotDeployable(), m.NotDeployable())
		}
	}
}

// The attack's AUC is the Mann–Whitney AUC of the scores of the members and
// non-members it names, computed here from the model directly.
func TestMembershipInferenceScores(t *testing.T) {
	ctx := context.Background()
	inter := planted(200, 20, 4, 8, 9)
	trainRows, test := LeaveLastOut(inter)
	train, err := NewDataset(trainRows)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Train(ctx, train, Options{Factors: 8, Iterations: 5})
	if err != nil {
		t.Fatal(err)
	}
	r, err := MembershipInference(ctx, m, train, test, MIAOptions{Bootstrap: 50})
	if err != nil {
		t.Fatal(err)
	}
	dot := func(u, i string) float64 {
		ui, _ := m.UserIndex(u)
		ii, _ := m.ItemIndex(i)
		var s float64
		for j, x := range m.User(int(ui)) {
			s += float64(x) * float64(m.Item(int(ii))[j])
		}
		return s
	}
	held := map[string]bool{}
	var non, members []float64
	for _, it := range test {
		held[it.User] = true
		non = append(non, dot(it.User, it.Item))
	}
	for _, it := range trainRows { // one member per training event
		if held[it.User] {
			members = append(members, dot(it.User, it.Item))
		}
	}
	if r.Members != len(members) || r.NonMembers != len(non) {
		t.Fatalf("scored %d members, %d non-members; want %d, %d", r.Members, r.NonMembers, len(members), len(non))
	}
	if want := AUC(members, non); math.Abs(r.AUC-want) > 1e-9 {
		t.Errorf("AUC %g, want %g", r.AUC, want)
	}
}

// TestCardFairness: with the planted clusters as item categories, the card's
// category rows account for every item, training event and recommended slot, and
// the user segments for every user; the categories' exposure shares are
// recounted here from the model's top-k lists.
func TestCardFairness(t *testing.T) {
	ctx := context.Background()
	inter := planted(300, 20, 5, 10, 4)
	cats := map[string]string{}
	for _, it := range inter {
		n, _ := strconv.Atoi(strings.TrimPrefix(it.Item, "i"))
		cats[it.Item] = "c" + strconv.Itoa(n/20)
	}
	m, card, err := Build(ctx, inter, BuildOptions{Options: Options{Factors: 5, Iterations: 5, Lambda: 10, Alpha: 5},
		Name: "shop", Now: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), ItemCategories: cats, MIA: MIAOptions{Bootstrap: 50}})
	if err != nil {
		t.Fatal(err)
	}
	if got := m.CategoryOf("i25"); got != "c1" {
		t.Errorf("model category of i25 = %q, want c1", got)
	}
	f := card.Fairness
	if len(f.ByCategory) != 5 || len(f.BySegment) != 3 || len(card.Monitoring) == 0 || len(card.Decommission) == 0 {
		t.Fatalf("fairness %+v", f)
	}
	// Recount: every user's top-10 list, training items excluded.
	ds, _ := NewDataset(inter)
	cpu, _ := scorer.NewCPU(m, scorer.Options{})
	perCat := map[string]float64{}
	total := 0.0
	if err := topLists(ctx, cpu, m, ds, 10, func(_ int, list []scorer.Scored) {
		for _, sc := range list {
			perCat[cats[m.ItemIDs[sc.Item]]]++
			total++
		}
	}); err != nil {
		t.Fatal(err)
	}
	var items, users int
	var events, slots float64
	for _, r := range f.ByCategory {
		items += r.Items
		events += r.InteractionShare
		slots += r.ExposureShare
		if want := perCat[r.Category] / total; math.Abs(r.ExposureShare-want) > 1e-12 {
			t.Errorf("category %s: exposure share %g, recounted %g", r.Category, r.ExposureShare, want)
		}
	}
	for _, r := range f.BySegment {
		users += r.Users
	}
	if items != m.NItems() || users != m.NUsers() || math.Abs(events-1) > 1e-9 || math.Abs(slots-1) > 1e-9 {
		t.Errorf("rows cover %d items (of %d), %d users (of %d), interaction shares sum %g, exposure shares %g", items, m.NItems(), users, m.NUsers(), events, slots)
	}
}
