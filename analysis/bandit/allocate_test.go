package bandit

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/liftlab/lift/experiment"
)

// within reports whether got is within 6 Monte-Carlo standard errors of a
// probability p estimated from draws: a false failure is negligible.
func within(got, p float64, draws int) bool {
	se := math.Sqrt(p * (1 - p) / float64(draws))
	return math.Abs(got-p) <= 6*se+1e-12
}

func TestProbBest(t *testing.T) {
	const draws = 200000
	tests := []struct {
		name string
		kind Reward
		arms []ArmStats
		want []float64
	}{
		{
			// scipy 1.10: pb_i = quad(lambda x: beta(1+s_i,1+n_i-s_i).pdf(x) *
			//   prod(beta(1+s_j,1+n_j-s_j).cdf(x) for j != i), 0, 1)
			// for (n, s) = (100, 10), (100, 15), (100, 12).
			name: "beta-binomial", kind: Binary,
			arms: []ArmStats{{N: 100, Sum: 10, SumSq: 10}, {N: 100, Sum: 15, SumSq: 15}, {N: 100, Sum: 12, SumSq: 12}},
			want: []float64{0.09710462736980087, 0.6645701169822938, 0.23832525564790247},
		},
		{
			// scipy 1.10: pb_i = quad(lambda x: t_i.pdf(x) * prod(t_j.cdf(x) for j != i), -20, 20)
			// with t_i = stats.t(df=n-1, loc=mean, scale=sqrt(var/n)) for
			// (n, mean, var) = (30, 1.0, 4.0), (40, 1.5, 9.0), (20, 0.8, 1.0).
			name: "normal, unknown variance", kind: Continuous,
			arms: []ArmStats{fromMoments(30, 1.0, 4.0), fromMoments(40, 1.5, 9.0), fromMoments(20, 0.8, 1.0)},
			want: []float64{0.18700898377415112, 0.7664731504999234, 0.046517865836762824},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ProbBest(tt.kind, tt.arms, draws, rand.New(rand.NewPCG(19, 1)))
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.want {
				if !within(got[i], tt.want[i], draws) {
					t.Errorf("arm %d: P(best) = %v, want %v (scipy) within 6 SE", i, got[i], tt.want[i])
				}
			}
		})
	}
}

// fromMoments builds sums with the given n, mean and sample variance.
func fromMoments(n, mean, v float64) ArmStats {
	return ArmStats{N: n, Sum: n * mean, SumSq: v*(n-1) + n*mean*mean}
}

func TestTopTwoWeights(t *testing.T) {
	// numpy 1.24, the top-two procedure itself (Russo 2020), 2,000,000 plays,
	// default_rng(19): draw every arm from Beta(1+s, 1+n-s), the leader I is
	// the argmax; with probability 0.5 play I, otherwise redraw until the
	// argmax J != I and play J. Frequencies of each arm played, for
	// (n, s) = (100, 10), (100, 15), (100, 12):
	want := []float64{0.1597415, 0.471458, 0.3688005}
	arms := []ArmStats{{N: 100, Sum: 10, SumSq: 10}, {N: 100, Sum: 15, SumSq: 15}, {N: 100, Sum: 12, SumSq: 12}}
	const draws = 200000
	al, err := Weights(Config{Reward: Binary, TopTwo: true, Beta: 0.5, Draws: draws}, arms, rand.New(rand.NewPCG(19, 2)))
	if err != nil {
		t.Fatal(err)
	}
	for i := range want {
		// the weight is a smooth function of the π's, each within 6 SE; the
		// numpy figure has its own SE of about 0.00035.
		if math.Abs(al.Weights[i]-want[i]) > 6*math.Sqrt(0.25/draws)+0.002 {
			t.Errorf("arm %d: top-two weight %v, want %v (numpy simulation of the procedure)", i, al.Weights[i], want[i])
		}
	}
}

func TestWeightsFloorAndBurnIn(t *testing.T) {
	arms := []ArmStats{{N: 5000, Sum: 100, SumSq: 100}, {N: 5000, Sum: 400, SumSq: 400}, {N: 5000, Sum: 150, SumSq: 150}}
	al, err := Weights(Config{Reward: Binary, MinShare: 0.05, Draws: 2000}, arms, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	// Arm 1 is best beyond doubt (2% vs 8% on 5,000 units each): π = (0, 1, 0),
	// so the floor formula gives 0.05, 1 − 2·0.05 = 0.9, 0.05.
	want := []float64{0.05, 0.9, 0.05}
	for i := range want {
		if math.Abs(al.Weights[i]-want[i]) > 1e-12 {
			t.Errorf("weights = %v, want %v", al.Weights, want)
		}
	}
	al, err = Weights(Config{Reward: Binary, MinShare: 0.05, BurnIn: 6000}, arms, rand.New(rand.NewPCG(1, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if !al.BurnIn || al.Weights[0] != 1.0/3 || al.Weights[1] != 1.0/3 {
		t.Errorf("under burn-in: %+v, want equal weights flagged burn_in", al)
	}
}

func TestConfigErrors(t *testing.T) {
	arms := []ArmStats{{N: 10, Sum: 1, SumSq: 1}, {N: 10, Sum: 2, SumSq: 2}}
	tests := []struct {
		c     Config
		arms  []ArmStats
		field string
	}{
		{Config{Reward: "poisson"}, arms, "reward_kind"},
		{Config{Reward: Binary, MinShare: 0.6}, arms, "min_share"},
		{Config{Reward: Binary, MinShare: math.NaN()}, arms, "min_share"},
		{Config{Reward: Binary, BurnIn: -1}, arms, "burn_in"},
		{Config{Reward: Binary, TopTwo: true, Beta: 1.5}, arms, "beta"},
		{Config{Reward: Binary}, arms[:1], "arms"},
		{Config{Reward: Binary}, []ArmStats{{N: 10, Sum: 11, SumSq: 11}, arms[1]}, "arms[0]"},
	}
	for _, tt := range tests {
		_, err := Weights(tt.c, tt.arms, rand.New(rand.NewPCG(1, 1)))
		var e *experiment.Error
		if !errors.As(err, &e) || e.Kind != experiment.Invalid || e.Field != tt.field {
			t.Errorf("Weights(%+v): %v, want an invalid error on %q", tt.c, err, tt.field)
		}
	}
}
