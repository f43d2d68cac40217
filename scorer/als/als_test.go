package als

import (
	"context"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// planted generates interactions with a planted cluster structure: users and items
// belong to one of c clusters; each user makes events events, 85% on items of their
// own cluster (Zipf-like popularity within the cluster) and 15% on items drawn from
// the whole catalog. A most-popular list serves one cluster's taste at best, so a
// model that recovers the clusters must beat it.
func planted(users, itemsPerCluster, clusters, events int, seed uint64) []Interaction {
	rng := rand.New(rand.NewPCG(seed, 99))
	zipf := rand.NewZipf(rng, 1.2, 1, uint64(itemsPerCluster-1))
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var out []Interaction
	for u := range users {
		c := u % clusters
		for e := range events {
			var item int
			if rng.Float64() < 0.85 {
				item = c*itemsPerCluster + int(zipf.Uint64())
			} else {
				item = rng.IntN(clusters * itemsPerCluster)
			}
			out = append(out, Interaction{
				User: "u" + strconv.Itoa(u), Item: "i" + strconv.Itoa(item), Weight: 1,
				Time: t0.Add(time.Duration(u*events+e) * time.Minute),
			})
		}
	}
	return out
}

func TestALSBeatsPopularity(t *testing.T) {
	ctx := context.Background()
	inter := planted(1000, 60, 10, 12, 1)
	trainRows, test := LeaveLastOut(inter)
	train, err := NewDataset(trainRows)
	if err != nil {
		t.Fatal(err)
	}
	m, err := Train(ctx, train, Options{Factors: 16, Iterations: 8, Lambda: 0.1, Alpha: 10})
	if err != nil {
		t.Fatal(err)
	}
	cpu, _ := scorer.NewCPU(m, scorer.Options{})
	met, err := Evaluate(ctx, cpu, m, train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	base, err := EvaluatePopularity(ctx, train, test, 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ALS: %+v", met)
	t.Logf("popularity: %+v", base)
	if met.Users != base.Users || met.Users < 900 {
		t.Fatalf("evaluated %d and %d users, want the same ≥ 900", met.Users, base.Users)
	}
	// The planted structure gives ALS a large margin; a broken trainer (random or
	// transposed factors) falls to or below the baseline.
	if met.Recall < 1.5*base.Recall || met.NDCG < 1.5*base.NDCG {
		t.Errorf("ALS recall@10 %.3f, NDCG@10 %.3f do not beat popularity %.3f, %.3f by 1.5×", met.Recall, met.NDCG, base.Recall, base.NDCG)
	}
	if met.Gini >= base.Gini {
		t.Errorf("ALS exposure Gini %.3f should be below popularity's %.3f (everyone gets nearly the same list)", met.Gini, base.Gini)
	}
}

func TestTrainDeterministic(t *testing.T) {
	ds, err := NewDataset(planted(200, 20, 4, 8, 3))
	if err != nil {
		t.Fatal(err)
	}
	a, _ := Train(context.Background(), ds, Options{Factors: 8, Iterations: 3, Workers: 1, Seed: 5})
	b, _ := Train(context.Background(), ds, Options{Factors: 8, Iterations: 3, Workers: 4, Seed: 5})
	c, _ := Train(context.Background(), ds, Options{Factors: 8, Iterations: 3, Workers: 1, Seed: 6})
	if !slices.Equal(a.Items, b.Items) || !slices.Equal(a.Users, b.Users) {
		t.Error("same seed, different worker counts: factors differ")
	}
	if slices.Equal(a.Items, c.Items) {
		t.Error("different seeds gave identical factors")
	}
}

func TestTrainSolvesNormalEquations(t *testing.T) {
	// After a sweep ends with the item step, each item vector satisfies its normal
	// equations (XᵀCⁱX + λI) y_i = XᵀCⁱp(i), built here densely over all users.
	inter := planted(60, 10, 3, 6, 4)
	ds, _ := NewDataset(inter)
	o := Options{Factors: 4, Iterations: 2, Lambda: 0.2, Alpha: 3}
	m, _ := Train(context.Background(), ds, o)
	d := m.Dim
	for i := range 5 {
		a := make([]float64, d*d)
		b := make([]float64, d)
		r := map[int32]float64{}
		for _, e := range ds.byItem[i] {
			r[e.idx] = e.r
		}
		for u := range m.NUsers() {
			c, p := 1.0, 0.0
			if ru, ok := r[int32(u)]; ok {
				c, p = 1+o.Alpha*ru, 1
			}
			x := m.User(u)
			for j := range d {
				b[j] += c * p * float64(x[j])
				for l := range d {
					a[j*d+l] += c * float64(x[j]) * float64(x[l])
				}
			}
		}
		y := m.Item(i)
		for j := range d {
			a[j*d+j] += o.Lambda
			var lhs float64
			for l := range d {
				lhs += a[j*d+l] * float64(y[l])
			}
			if diff := lhs - b[j]; diff > 1e-3 || diff < -1e-3 {
				t.Errorf("item %d row %d: lhs %g, rhs %g", i, j, lhs, b[j])
			}
		}
	}
}

func TestLeaveLastOut(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	inter := []Interaction{
		{User: "a", Item: "x", Weight: 1, Time: at(1)},
		{User: "a", Item: "y", Weight: 1, Time: at(5)}, // a's last event: y held out
		{User: "a", Item: "y", Weight: 1, Time: at(2)}, // earlier y event also leaves training
		{User: "a", Item: "z", Weight: 1, Time: at(3)},
		{User: "b", Item: "x", Weight: 1, Time: at(1)}, // b has one distinct item: not evaluated
		{User: "b", Item: "x", Weight: 1, Time: at(2)},
		{User: "c", Item: "x", Weight: 1, Time: at(4)},
		{User: "c", Item: "z", Weight: 1, Time: at(4)}, // tie on time: the later row wins
	}
	train, test := LeaveLastOut(inter)
	wantTest := []Interaction{inter[1], inter[7]}
	wantTrain := []Interaction{inter[0], inter[3], inter[4], inter[5], inter[6]}
	if !slices.Equal(test, wantTest) || !slices.Equal(train, wantTrain) {
		t.Fatalf("train %v\ntest %v", train, test)
	}
}

func TestRankQuality(t *testing.T) {
	list := []scorer.Scored{{Item: 4}, {Item: 7}, {Item: 1}}
	tests := []struct {
		held         []int32
		recall, ndcg float64
	}{
		{[]int32{4}, 1, 1},           // rank 1: 1/log2(2) = 1
		{[]int32{1}, 1, 0.5},         // rank 3: 1/log2(4) = 0.5
		{[]int32{9}, 0, 0},           // missed
		{[]int32{-1}, 0, 0},          // item unknown to the model
		{[]int32{7, 9}, 0.5, 0.3868}, // (1/log2 3) / (1 + 1/log2 3) = 0.63093/1.63093
	}
	for _, tc := range tests {
		r, n := rankQuality(list, tc.held, 3)
		if r != tc.recall || n < tc.ndcg-1e-4 || n > tc.ndcg+1e-4 {
			t.Errorf("held %v: recall %g ndcg %g, want %g %g", tc.held, r, n, tc.recall, tc.ndcg)
		}
	}
}

func TestNewDatasetErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    []Interaction
		field string
		kind  experiment.Kind
	}{
		{"empty user", []Interaction{{User: "", Item: "x", Weight: 1}}, "interactions[0]", experiment.Invalid},
		{"zero weight", []Interaction{{User: "a", Item: "x", Weight: 1}, {User: "a", Item: "y", Weight: 0}}, "interactions[1].weight", experiment.Invalid},
		{"none", nil, "", experiment.InsufficientData},
	}
	for _, tc := range tests {
		_, err := NewDataset(tc.in)
		var e *experiment.Error
		if !experiment.Is(err, tc.kind) || !errorsAs(err, &e) || e.Field != tc.field {
			t.Errorf("%s: err = %v, want %v on %q", tc.name, err, tc.kind, tc.field)
		}
	}
}

func TestBuild(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	m, card, err := Build(ctx, planted(300, 20, 5, 10, 8), BuildOptions{
		Options: Options{Factors: 8, Iterations: 5, Alpha: 10}, Name: "shop", TrainingData: "synthetic", Now: now,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Meta.Name != "shop" || m.Meta.Version != "20260301T090000Z" || m.NUsers() != 300 || m.Meta.Metrics["recall@10"] != card.Evaluation.Recall {
		t.Fatalf("model meta %+v", m.Meta)
	}
	if card.Evaluation.Recall <= card.Evaluation.BaselineRecall {
		t.Errorf("card: recall %g not above baseline %g", card.Evaluation.Recall, card.Evaluation.BaselineRecall)
	}
	if !slices.Contains(card.NotFor, scorer.NotForPricing) || card.ProfileReset == "" {
		t.Error("card lacks the pricing exclusion or the profile reset")
	}
	md := card.Markdown()
	for _, want := range []string{"# Model card: shop", "recall@10", "Gini", "pricing", "Resetting a profile"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	if _, err := card.JSON(); err != nil {
		t.Fatal(err)
	}
	// The model folds in a new user from recent items with the trained λ and α.
	if m.Meta.Alpha != 10 || m.Meta.Lambda != DefaultLambda {
		t.Errorf("fold-in parameters not recorded: λ=%g α=%g", m.Meta.Lambda, m.Meta.Alpha)
	}
}

func TestCGSolver(t *testing.T) {
	ctx := context.Background()
	inter := planted(300, 20, 5, 10, 2)
	ds, _ := NewDataset(inter)
	// With as many steps as dimensions, CG solves each d×d system exactly (up to
	// rounding), so a one-sweep fit matches Cholesky's.
	chol, _ := Train(ctx, ds, Options{Factors: 6, Iterations: 1, Alpha: 5})
	cg, err := Train(ctx, ds, Options{Factors: 6, Iterations: 1, Alpha: 5, Solver: SolverCG, CGSteps: 6})
	if err != nil {
		t.Fatal(err)
	}
	for i := range chol.Items {
		if d := chol.Items[i] - cg.Items[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("item factor %d: cholesky %g, cg %g", i, chol.Items[i], cg.Items[i])
		}
	}
	// A few warm-started steps per sweep still learn the planted structure.
	trainRows, test := LeaveLastOut(planted(1000, 60, 10, 12, 1))
	train, _ := NewDataset(trainRows)
	m, _ := Train(ctx, train, Options{Factors: 16, Iterations: 8, Alpha: 10, Solver: SolverCG})
	cpu, _ := scorer.NewCPU(m, scorer.Options{})
	met, _ := Evaluate(ctx, cpu, m, train, test, 10)
	base, _ := EvaluatePopularity(ctx, train, test, 10)
	if met.Recall < 1.5*base.Recall {
		t.Errorf("CG ALS recall@10 %.3f does not beat popularity %.3f by 1.5×", met.Recall, base.Recall)
	}
	if _, err := Train(ctx, ds, Options{Solver: "qr"}); !experiment.Is(err, experiment.Invalid) {
		t.Errorf("unknown solver: err = %v", err)
	}
}
