package als

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/liftlab/lift/scorer/internal/linalg"
)

func TestDPCalibration(t *testing.T) {
	// Python 3 (math only), the zCDP calibration of DP's doc comment:
	//   l=math.log(1/1e-6); r=math.sqrt(l+1)-math.sqrt(l); rho=r*r
	//   3*math.sqrt(10/(2*rho))                          → 50.75436729700165
	//   math.sqrt(1**4*(1+50*5*5)+50*(1+5)**2*1**2)      → 55.235857918565905
	//   math.sqrt(0.5**4*(1+10*2*2)+10*(1+2)**2*0.5**2)  → 5.006246098625197
	// and back: rho=10*9/(2*sigma**2); rho+2*math.sqrt(rho*math.log(1e6)) → 1.0000000000000016
	if got := SigmaFor(1, 1e-6, 3, 10); math.Abs(got-50.75436729700165) > 1e-9 {
		t.Errorf("SigmaFor = %.15g, want 50.75436729700165", got)
	}
	for _, c := range []struct {
		p     DP
		alpha float64
		want  float64
	}{{DP{Epsilon: 1}, 5, 55.235857918565905}, {DP{Epsilon: 1, Clip: 0.5, MaxItems: 10}, 2, 5.006246098625197}} {
		if got := c.p.Sensitivity(c.alpha); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("Sensitivity(%+v, α=%g) = %.15g, want %.15g", c.p, c.alpha, got, c.want)
		}
	}
}

// release is one sweep's item statistics without noise, flattened: G, then for
// each item A_i and b_i.
func release(x []float64, byUser [][]entry, ni, d int, p DP, alpha float64, seed uint64) []float64 {
	rows := limitItems(byUser, p.MaxItems, seed)
	xc := clipRows(x, d, p.Clip)
	out := linalg.GramF64(xc, d)
	stat, b := make([]float64, d*d), make([]float64, d)
	for _, es := range transpose(rows, ni) {
		itemStat(stat, b, xc, es, d, alpha)
		out = append(out, stat...)
		out = append(out, b...)
	}
	return out
}

// TestDPSensitivityBound: removing any one user (here, users with more items than
// MaxItems and factors far beyond the clip) changes the released statistics by
// at most Δ in L2 norm, and the worst case comes close to it.
func TestDPSensitivityBound(t *testing.T) {
	const d, ni, nu = 4, 30, 12
	rng := rand.New(rand.NewPCG(3, 4))
	byUser := make([][]entry, nu)
	for u := range byUser {
		for i := range ni {
			if rng.Float64() < 0.6 {
				byUser[u] = append(byUser[u], entry{idx: int32(i), r: 1 + float64(rng.IntN(3)), n: 1})
			}
		}
	}
	x := make([]float64, nu*d)
	for j := range x {
		x[j] = 5 * rng.NormFloat64()
	}
	p := DP{Epsilon: 1, Clip: 0.7, MaxItems: 6}
	p.fill()
	const alpha = 3
	full := release(x, byUser, ni, d, p, alpha, 9)
	bound := p.Sensitivity(alpha)
	worst := 0.0
	for u := range nu {
		without := append([][]entry(nil), byUser...)
		without[u] = nil // the user is absent: contributes nothing
		r := release(x, without, ni, d, p, alpha, 9)
		var s float64
		for j := range r {
			s += (r[j] - full[j]) * (r[j] - full[j])
		}
		worst = max(worst, math.Sqrt(s))
	}
	if worst > bound*(1+1e-12) || worst < 0.9*bound {
		t.Errorf("largest change by one user %.6g, bound Δ = %.6g: want at most Δ and within 10%% of it (every user is clipped and has ≥ %d items)", worst, bound, p.MaxItems)
	}
}

// TestDPAccuracyCost: the card states the guarantee and the accuracy cost; with a
// vast ε the noise is negligible and the model ranks as the non-private one does;
// at ε = 1 it costs recall.
func TestDPAccuracyCost(t *testing.T) {
	ctx := context.Background()
	inter := planted(1500, 30, 6, 12, 11)
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		eps float64
		// maxLoss and minLoss bound the recall@10 lost to the noise. With 1,500
		// users the ε = 1 noise (σ ≈ 724 against item sums of order α·250/d)
		// drowns the signal: measured 0.7193 → 0.0427.
		minLoss, maxLoss float64
	}{{1e9, -0.02, 0.02}, {1, 0.3, 1}} {
		_, card, err := Build(ctx, inter, BuildOptions{Options: Options{Factors: 6, Iterations: 6, Lambda: 10, Alpha: 5,
			DP: &DP{Epsilon: c.eps, Delta: 1e-6}}, Name: "shop", Now: now, MIA: MIAOptions{Bootstrap: 100}})
		if err != nil {
			t.Fatal(err)
		}
		pr := card.Privacy
		if pr == nil || pr.Epsilon != c.eps || pr.Delta != 1e-6 || pr.Sigma != SigmaFor(c.eps, 1e-6, pr.Sensitivity, 6) {
			t.Fatalf("ε %g: card privacy %+v", c.eps, pr)
		}
		t.Logf("ε %g: σ %.4g, recall@10 %.4f (without noise %.4f), NDCG %.4f (%.4f), MIA AUC %.3f", c.eps, pr.Sigma,
			card.Evaluation.Recall, pr.NonPrivateRecall, card.Evaluation.NDCG, pr.NonPrivateNDCG, card.Membership.AUC)
		if loss := pr.NonPrivateRecall - card.Evaluation.Recall; loss < c.minLoss || loss > c.maxLoss {
			t.Errorf("ε %g: recall lost to the noise %.4f, want in [%g, %g]", c.eps, loss, c.minLoss, c.maxLoss)
		}
	}
}
