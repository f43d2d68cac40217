package als

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/liftlab/lift/experiment"
	"github.com/liftlab/lift/scorer"
)

// LeaveLastOut splits interactions for offline evaluation. For each user, the
// held-out item is the item of the user's last event (latest Time; among equal
// times, the later row). If the user has at least one other distinct item, every
// event of the user with the held-out item goes to test (so training never saw
// the pair) and the rest to train; otherwise all the user's events stay in train
// and the user is not evaluated. Row order is kept within each part.
func LeaveLastOut(inter []Interaction) (train, test []Interaction) {
	last := map[string]int{} // user → row of its last event
	distinct := map[string]map[string]bool{}
	for row, it := range inter {
		if j, ok := last[it.User]; !ok || !it.Time.Before(inter[j].Time) {
			last[it.User] = row
		}
		if distinct[it.User] == nil {
			distinct[it.User] = map[string]bool{}
		}
		distinct[it.User][it.Item] = true
	}
	held := map[string]string{}
	for u, row := range last {
		if len(distinct[u]) >= 2 {
			held[u] = inter[row].Item
		}
	}
	for row, it := range inter {
		if h, ok := held[it.User]; ok && h == it.Item {
			if last[it.User] == row {
				test = append(test, it)
			}
			continue
		}
		train = append(train, it)
	}
	return train, test
}

// Metrics is offline ranking quality at cut-off K over Users evaluated users.
//
// For a user with held-out items T and top-K list L (the user's training items
// excluded from L):
//
//	recall@K = |L ∩ T| / |T|
//	NDCG@K   = Σ_{r=1..K, L_r ∈ T} 1/log₂(r+1)  ÷  Σ_{r=1..min(K,|T|)} 1/log₂(r+1)
//
// (Järvelin & Kekäläinen 2002, binary relevance), each averaged over users. With
// LeaveLastOut |T| = 1, so recall@K is the hit rate and NDCG@K = 1/log₂(rank+1).
// Gini and Coverage describe the exposures of the evaluated lists (scorer.Gini over
// every catalog item; the share of items shown at least once).
type Metrics struct {
	K        int
	Users    int
	Recall   float64
	NDCG     float64
	Gini     float64
	Coverage float64

	perUser map[string][2]float64 // user → (recall, NDCG), for the card's segments
}

// queryFunc returns the query vector of a user given the user's training items.
type queryFunc func(user string, trainItems []string) ([]float32, error)

// Evaluate scores every test user with s over m's catalog (queries from m.Query:
// the trained vector, or a fold-in of the training items for users m does not
// know) and measures the held-out items.
func Evaluate(ctx context.Context, s scorer.Scorer, m *scorer.Model, train *Dataset, test []Interaction, k int) (Metrics, error) {
	return evaluate(ctx, s, m, train, test, k, func(user string, items []string) ([]float32, error) {
		q, _, err := m.Query(user, items)
		return q, err
	})
}

// Popularity returns the most-popular baseline as a one-dimensional model: item
// i's vector is [n_i], the number of distinct training users of item i, so the
// query [1] ranks items by popularity (ties by item order).
func Popularity(train *Dataset) *scorer.Model {
	m := &scorer.Model{Dim: 1, ItemIDs: append([]string(nil), train.Items...), Items: make([]float32, len(train.Items)), Meta: scorer.Metadata{Name: "popularity"}}
	for i, users := range train.byItem {
		m.Items[i] = float32(len(users))
	}
	return m
}

// EvaluatePopularity is Evaluate for the most-popular baseline.
func EvaluatePopularity(ctx context.Context, train *Dataset, test []Interaction, k int) (Metrics, error) {
	m := Popularity(train)
	s, err := scorer.NewCPU(m, scorer.Options{})
	if err != nil {
		return Metrics{}, err
	}
	defer s.Close()
	return evaluate(ctx, s, m, train, test, k, func(string, []string) ([]float32, error) { return []float32{1}, nil })
}

const evalBatch = 256

func evaluate(ctx context.Context, s scorer.Scorer, m *scorer.Model, train *Dataset, test []Interaction, k int, query queryFunc) (Metrics, error) {
	const op = "als.Evaluate"
	if k < 1 {
		return Metrics{}, experiment.E(op, experiment.Invalid, experiment.Field("k"), experiment.Errorf("must be at least 1, got %d", k))
	}
	trainUser := make(map[string]int, len(train.Users))
	for u, id := range train.Users {
		trainUser[id] = u
	}
	held := map[string][]int32{} // user → held-out items (model index; −1 when unknown to the model)
	var users []string
	for _, it := range test {
		if _, ok := trainUser[it.User]; !ok {
			continue // no training history: nothing to rank from
		}
		if _, ok := held[it.User]; !ok {
			users = append(users, it.User)
		}
		idx, ok := m.ItemIndex(it.Item)
		if !ok {
			idx = -1
		}
		held[it.User] = append(held[it.User], idx)
	}
	met := Metrics{K: k, perUser: make(map[string][2]float64, len(users))}
	if len(users) == 0 {
		return met, experiment.E(op, experiment.InsufficientData, experiment.Errorf("no test user has training interactions"))
	}
	exposure := make([]float64, m.NItems())
	for lo := 0; lo < len(users); lo += evalBatch {
		batch := users[lo:min(lo+evalBatch, len(users))]
		queries := make([][]float32, len(batch))
		exclude := make([][]int32, len(batch))
		for j, u := range batch {
			es := train.byUser[trainUser[u]]
			ids := make([]string, len(es))
			for e, en := range es {
				ids[e] = train.Items[en.idx]
				if idx, ok := m.ItemIndex(ids[e]); ok {
					exclude[j] = append(exclude[j], idx)
				}
			}
			q, err := query(u, ids)
			if err != nil {
				return met, experiment.E(op, experiment.Field("user "+strconv.Quote(u)), err)
			}
			queries[j] = q
		}
		res, err := s.Score(ctx, queries, k, exclude)
		if err != nil {
			return met, experiment.E(op, err)
		}
		for j, u := range batch {
			recall, ndcg := rankQuality(res[j], held[u], k)
			met.Recall += recall
			met.NDCG += ndcg
			met.perUser[u] = [2]float64{recall, ndcg}
			for _, sc := range res[j] {
				exposure[sc.Item]++
			}
		}
	}
	met.Users = len(users)
	met.Recall /= float64(met.Users)
	met.NDCG /= float64(met.Users)
	met.Gini, met.Coverage = concentration(exposure)
	return met, nil
}

// rankQuality returns recall@k and NDCG@k of one list against held-out items.
func rankQuality(list []scorer.Scored, held []int32, k int) (recall, ndcg float64) {
	var dcg, idcg float64
	hits := 0
	for r, sc := range list {
		for _, h := range held {
			if sc.Item == h {
				hits++
				dcg += 1 / math.Log2(float64(r+2))
				break
			}
		}
	}
	for r := range min(k, len(held)) {
		idcg += 1 / math.Log2(float64(r+2))
	}
	return float64(hits) / float64(len(held)), dcg / idcg
}

// concentration returns the Gini of exposure counts and the share of items with
// at least one exposure.
func concentration(exposure []float64) (gini, coverage float64) {
	shown := 0
	for _, e := range exposure {
		if e > 0 {
			shown++
		}
	}
	return scorer.Gini(exposure), float64(shown) / float64(max(len(exposure), 1))
}

// Exposure returns the Gini and coverage of the top-k lists of every user of m
// (training items excluded), the exposure concentration reported on the card.
func Exposure(ctx context.Context, s scorer.Scorer, m *scorer.Model, train *Dataset, k int) (gini, coverage float64, err error) {
	exposure := make([]float64, m.NItems())
	err = topLists(ctx, s, m, train, k, func(_ int, list []scorer.Scored) {
		for _, sc := range list {
			exposure[sc.Item]++
		}
	})
	if err != nil {
		return 0, 0, experiment.E("als.Exposure", err)
	}
	gini, coverage = concentration(exposure)
	return gini, coverage, nil
}

// topLists calls fn with the top-k list of every user u of m (training items
// excluded), in user order.
func topLists(ctx context.Context, s scorer.Scorer, m *scorer.Model, train *Dataset, k int, fn func(u int, list []scorer.Scored)) error {
	for lo := 0; lo < m.NUsers(); lo += evalBatch {
		hi := min(lo+evalBatch, m.NUsers())
		queries := make([][]float32, 0, hi-lo)
		exclude := make([][]int32, 0, hi-lo)
		for u := lo; u < hi; u++ {
			queries = append(queries, m.User(u))
			var ex []int32
			if u < len(train.byUser) && train.Users[u] == m.UserIDs[u] {
				for _, e := range train.byUser[u] {
					if idx, ok := m.ItemIndex(train.Items[e.idx]); ok {
						ex = append(ex, idx)
					}
				}
			}
			exclude = append(exclude, ex)
		}
		res, err := s.Score(ctx, queries, k, exclude)
		if err != nil {
			return err
		}
		for j, list := range res {
			fn(lo+j, list)
		}
	}
	return nil
}

// BuildOptions configures Build.
type BuildOptions struct {
	Options
	K            int       // evaluation cut-off (default 10)
	Name         string    // model name (required)
	Version      string    // model version (default the creation time, 20060102T150405Z)
	TrainingData string    // description of the data for the card
	Now          time.Time // creation time (required: the caller's clock)
	// EvaluateOnly skips the final refit on all interactions: the shipped model is
	// the one trained on the training split.
	EvaluateOnly bool
	// MaxMIAAUC is the membership-inference gate: a model whose attack AUC is above
	// it is marked not deployable (default DefaultMaxMIAAUC; at least 1 disables
	// the gate, the attack still runs and is reported).
	MaxMIAAUC float64
	MIA       MIAOptions
	// ItemCategories maps item ids to categories; the model carries those of its
	// items (scorer.MetaItemCategories) and the card reports exposure by category.
	ItemCategories map[string]string
}

// Build splits inter with LeaveLastOut, trains on the training part, evaluates the
// model and the most-popular baseline on the held-out part, runs the
// membership-inference gate (a model trained with o.Options on the users of
// SplitUsers' members, attacked by MembershipInference), refits on all the
// interactions (unless EvaluateOnly), measures the exposure concentration of the
// final model's recommendations, and returns the model (metrics in its metadata)
// and its card.
func Build(ctx context.Context, inter []Interaction, o BuildOptions) (*scorer.Model, *scorer.Card, error) {
	const op = "als.Build"
	o.Options.fill()
	if o.K <= 0 {
		o.K = 10
	}
	if o.Name == "" {
		return nil, nil, experiment.E(op, experiment.Invalid, experiment.Field("name"), experiment.Errorf("required"))
	}
	if o.Now.IsZero() {
		return nil, nil, experiment.E(op, experiment.Invalid, experiment.Field("now"), experiment.Errorf("required"))
	}
	if o.Version == "" {
		o.Version = o.Now.UTC().Format("20060102T150405Z")
	}
	all, err := NewDataset(inter)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	trainRows, test := LeaveLastOut(inter)
	train, err := NewDataset(trainRows)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	if o.MaxMIAAUC == 0 {
		o.MaxMIAAUC = DefaultMaxMIAAUC
	}
	if !(o.MaxMIAAUC > 0.5) {
		return nil, nil, experiment.E(op, experiment.Invalid, experiment.Field("max_mia_auc"), experiment.Errorf("must be above 0.5 (chance), got %g", o.MaxMIAAUC))
	}
	m, err := Train(ctx, train, o.Options)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	var private *scorer.CardPrivacy
	if o.DP != nil {
		if private, err = privacyCost(ctx, train, test, o); err != nil {
			return nil, nil, experiment.E(op, err)
		}
	}
	mia, err := membership(ctx, inter, o)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	cpu, err := scorer.NewCPU(m, scorer.Options{Workers: o.Workers})
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	met, err := Evaluate(ctx, cpu, m, train, test, o.K)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	base, err := EvaluatePopularity(ctx, train, test, o.K)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	final, finalData := m, train
	if !o.EvaluateOnly {
		if final, err = Train(ctx, all, o.Options); err != nil {
			return nil, nil, experiment.E(op, err)
		}
		finalData = all
		if cpu, err = scorer.NewCPU(final, scorer.Options{Workers: o.Workers}); err != nil {
			return nil, nil, experiment.E(op, err)
		}
	}
	gini, coverage, err := Exposure(ctx, cpu, final, finalData, o.K)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	if cats := catalogCategories(final, o.ItemCategories); cats != "" {
		if final.Meta.Extra == nil {
			final.Meta.Extra = map[string]string{}
		}
		final.Meta.Extra[scorer.MetaItemCategories] = cats
	}
	fair, err := fairness(ctx, cpu, final, finalData, o.K, o.ItemCategories, met.perUser)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	popCPU, _ := scorer.NewCPU(Popularity(finalData), scorer.Options{Workers: o.Workers})
	popGini, _, err := popularityExposure(ctx, popCPU, finalData, o.K)
	if err != nil {
		return nil, nil, experiment.E(op, err)
	}
	ks := strconv.Itoa(o.K)
	final.Meta.Name, final.Meta.Version, final.Meta.Created = o.Name, o.Version, o.Now.UTC()
	final.Meta.TrainingData = o.TrainingData
	final.Meta.Metrics = map[string]float64{
		"recall@" + ks: met.Recall, "ndcg@" + ks: met.NDCG,
		"popularity_recall@" + ks: base.Recall, "popularity_ndcg@" + ks: base.NDCG,
		"eval_users": float64(met.Users), "exposure_gini@" + ks: gini, "catalog_coverage@" + ks: coverage,
	}
	card := &scorer.Card{
		Name: o.Name, Version: o.Version, Created: o.Now.UTC(),
		Algorithm: "implicit-feedback alternating least squares (Hu, Koren & Volinsky 2008), " + o.Solver + " solver",
		Parameters: map[string]float64{
			"factors": float64(o.Factors), "iterations": float64(o.Iterations),
			"lambda": o.Lambda, "alpha": o.Alpha, "seed": float64(o.Seed),
		},
		Data: scorer.CardData{
			Description: o.TrainingData, Users: len(all.Users), Items: len(all.Items),
			Interactions: all.Pairs(), Events: all.Events, From: all.from, To: all.to,
		},
		Evaluation: scorer.CardEvaluation{
			Protocol: "Leave-last-out: for each user with at least two distinct items, the item of the user's latest event " +
				"is held out (all the user's events with it removed from training); the model trained on the rest ranks " +
				"the catalog less the user's training items. recall@k is the share of users whose held-out item is in the " +
				"top k; NDCG@k averages 1/log2(rank+1) (0 beyond k). Baseline: most popular items by distinct training users.",
			K: o.K, Users: met.Users, Recall: met.Recall, NDCG: met.NDCG, BaselineRecall: base.Recall, BaselineNDCG: base.NDCG,
		},
		Exposure:    scorer.CardExposure{K: o.K, Gini: gini, Coverage: coverage, BaselineGini: popGini},
		IntendedUse: "Ranking catalog items (content, products to browse) in personalized journeys, served inside an experiment with a permanent holdout so that its effect is measured.",
		NotFor: []string{
			scorer.NotForPricing,
			"eligibility, credit, employment, housing or any decision with legal or similarly significant effects",
			"inferring sensitive attributes of users",
		},
		ProfileReset: scorer.DefaultProfileReset,
		Limitations: []string{
			"Users and items with few interactions get poorly estimated vectors; new users are folded in from recent items.",
			"Implicit feedback reflects what was shown: popular items are over-represented, and recommendations can narrow onto them (watch the exposure Gini).",
		},
	}
	if o.Solver == SolverCG {
		card.Parameters["cg_steps"] = float64(o.CGSteps)
	}
	card.Fairness = fair
	if private != nil {
		card.Privacy = private
		card.Parameters["dp_epsilon"], card.Parameters["dp_delta"] = private.Epsilon, private.Delta
		card.Parameters["dp_clip"], card.Parameters["dp_max_items"] = o.DP.Clip, float64(o.DP.MaxItems)
		final.Meta.Metrics["dp_epsilon"], final.Meta.Metrics["dp_delta"] = private.Epsilon, private.Delta
		card.Limitations = append(card.Limitations, "Trained with differential privacy: the card's evaluation, exposure and membership-inference figures are computed from the data without noise and are not covered by the guarantee.")
	}
	card.Membership = &scorer.CardMembership{
		Attack: fmt.Sprintf("Black-box, score-based, on users (Shokri et al. 2017; for recommenders Zhang et al., CCS 2021): a model is trained "+
			"with the same parameters on %.0f%% of the users (members), the other users held out whole (non-members). Each user's vector "+
			"is folded in (one ALS user step, item factors fixed) from all of the user's events, the same way for both groups; "+
			"the user's score is %s. AUC = Mann-Whitney U / (members x non-members) over users; 0.5 is chance. "+
			"The interval resamples users; the model is not refitted per resample.", 100*(1-mia.Holdout), miaScoreText),
		Members: mia.Members, NonMembers: mia.NonMembers, AUC: mia.AUC, Low: mia.Low, High: mia.High,
		Level: mia.Level, Bootstrap: mia.Bootstrap, MaxAUC: o.MaxMIAAUC, Passed: mia.AUC <= o.MaxMIAAUC,
		CannotDetect: MIACannotDetect,
	}
	final.Meta.Metrics["mia_auc"] = mia.AUC
	if !card.Membership.Passed {
		card.NotDeployable = fmt.Sprintf("membership-inference AUC %.3f (%.0f%% interval %.3f to %.3f) is above the gate's %.2f: "+
			"the model's scores tell the users it was trained on from others; retrain with a larger lambda, a smaller alpha or fewer factors",
			mia.AUC, 100*mia.Level, mia.Low, mia.High, o.MaxMIAAUC)
		if final.Meta.Extra == nil {
			final.Meta.Extra = map[string]string{}
		}
		final.Meta.Extra[scorer.MetaNotDeployable] = card.NotDeployable
	}
	card.Monitoring = monitoringPlan(o.K, gini, met.Recall)
	card.Decommission = decommissionCriteria(o.MaxMIAAUC)
	return final, card, nil
}

// popularityExposure is Exposure for the popularity baseline.
func popularityExposure(ctx context.Context, s scorer.Scorer, ds *Dataset, k int) (float64, float64, error) {
	exposure := make([]float64, len(ds.Items))
	for lo := 0; lo < len(ds.byUser); lo += evalBatch {
		hi := min(lo+evalBatch, len(ds.byUser))
		queries := make([][]float32, hi-lo)
		exclude := make([][]int32, hi-lo)
		for u := lo; u < hi; u++ {
			queries[u-lo] = []float32{1}
			for _, e := range ds.byUser[u] {
				exclude[u-lo] = append(exclude[u-lo], e.idx) // Popularity keeps the dataset's item order
			}
		}
		res, err := s.Score(ctx, queries, k, exclude)
		if err != nil {
			return 0, 0, err
		}
		for _, list := range res {
			for _, sc := range list {
				exposure[sc.Item]++
			}
		}
	}
	g, c := concentration(exposure)
	return g, c, nil
}

// privacyCost states the guarantee of o.DP and measures its accuracy cost: the
// same training without noise, evaluated on the same held-out interactions.
func privacyCost(ctx context.Context, train *Dataset, test []Interaction, o BuildOptions) (*scorer.CardPrivacy, error) {
	p := *o.DP
	p.fill()
	plain := o.Options
	plain.DP = nil
	m, err := Train(ctx, train, plain)
	if err != nil {
		return nil, err
	}
	cpu, err := scorer.NewCPU(m, scorer.Options{Workers: o.Workers})
	if err != nil {
		return nil, err
	}
	met, err := Evaluate(ctx, cpu, m, train, test, o.K)
	if err != nil {
		return nil, err
	}
	sens := p.Sensitivity(o.Alpha)
	return &scorer.CardPrivacy{
		Epsilon: p.Epsilon, Delta: p.Delta, Unit: "one user (all of their interactions)",
		Mechanism: fmt.Sprintf("Gaussian mechanism on the ALS item step's sufficient statistics (the users' Gram matrix, and per item the sums of "+
			"alpha x x^T and (1+alpha) x over its users), each user's factor clipped to L2 norm %g and at most %d items per user (binary preferences); "+
			"%d sweeps composed under zero-concentrated DP (Bun & Steinke 2016) and converted to (epsilon, delta).", p.Clip, p.MaxItems, o.Iterations),
		Protects: "the item factors and every ranking computed from them alone. The user factors in the file are computed from each user's own " +
			"history and reveal it to whoever reads the file.",
		Sigma: SigmaFor(p.Epsilon, p.Delta, sens, o.Iterations), Sensitivity: sens,
		NonPrivateRecall: met.Recall, NonPrivateNDCG: met.NDCG,
	}, nil
}

// membership runs the membership-inference gate's attack for Build: a model
// trained with o.Options on the interactions of the member users (SplitUsers),
// attacked with the members and the held-out users.
func membership(ctx context.Context, inter []Interaction, o BuildOptions) (MIA, error) {
	mo := o.MIA
	mo.fill()
	members, non := SplitUsers(inter, mo.Holdout, mo.Seed)
	if len(non) == 0 {
		return MIA{}, experiment.E(experiment.InsufficientData, experiment.Errorf("the membership-inference attack needs at least 2 users"))
	}
	ds, err := NewDataset(members)
	if err != nil {
		return MIA{}, err
	}
	m, err := Train(ctx, ds, o.Options)
	if err != nil {
		return MIA{}, err
	}
	return MembershipInference(ctx, m, members, non, mo)
}
