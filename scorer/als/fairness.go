package als

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/liftlab/lift/scorer"
)

// noCategory is the card's row for items without a category.
const noCategory = "(none)"

// userSegments are the activity segments of the card: users by the number of
// distinct items in their training history.
var userSegments = [...]struct {
	name   string
	lo, hi int // distinct items in [lo, hi)
}{{"1-4 items", 1, 5}, {"5-19 items", 5, 20}, {"20+ items", 20, 1 << 62}}

// catalogCategories returns the MetaItemCategories value for the items of m that
// have a category in cats ("" when none has).
func catalogCategories(m *scorer.Model, cats map[string]string) string {
	out := map[string]string{}
	for _, id := range m.ItemIDs {
		if c := cats[id]; c != "" {
			out[id] = c
		}
	}
	if len(out) == 0 {
		return ""
	}
	b, _ := json.Marshal(out) // map of strings: cannot fail
	return string(b)
}

// fairness measures, over the top-k lists of every user of m (as CardExposure),
// each item category's share of the catalog, of the training events and of the
// recommended slots, and for each user segment its held-out quality (perUser,
// from the evaluation), the share of its slots taken by the head (the 10% of
// items with the most training users) and the catalog its lists reach.
func fairness(ctx context.Context, s scorer.Scorer, m *scorer.Model, data *Dataset, k int, cats map[string]string, perUser map[string][2]float64) (*scorer.CardFairness, error) {
	ni := m.NItems()
	catOf := make([]string, ni)
	for i, id := range m.ItemIDs {
		catOf[i] = noCategory
		if c := cats[id]; c != "" {
			catOf[i] = c
		}
	}
	// Training events and distinct users per model item.
	events := make([]float64, ni)
	users := make([]int, ni)
	for di, es := range data.byItem {
		if i, ok := m.ItemIndex(data.Items[di]); ok {
			users[i] = len(es)
			for _, e := range es {
				events[i] += float64(e.n)
			}
		}
	}
	order := make([]int, ni)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return users[order[a]] > users[order[b]] })
	head := make([]bool, ni)
	for _, i := range order[:max(1, (ni+9)/10)] {
		head[i] = true
	}
	segOf := func(u int) int {
		n := 0
		if u < len(data.byUser) && data.Users[u] == m.UserIDs[u] {
			n = len(data.byUser[u])
		}
		for j, sg := range userSegments {
			if n >= sg.lo && n < sg.hi {
				return j
			}
		}
		return 0
	}
	exposure := make([]float64, ni)
	type segAcc struct {
		users, eval, slots, headSlots int
		recall, ndcg                  float64
		shown                         map[int32]bool
	}
	segs := make([]segAcc, len(userSegments))
	for j := range segs {
		segs[j].shown = map[int32]bool{}
	}
	total := 0
	err := topLists(ctx, s, m, data, k, func(u int, list []scorer.Scored) {
		sg := &segs[segOf(u)]
		sg.users++
		if q, ok := perUser[m.UserIDs[u]]; ok {
			sg.eval++
			sg.recall += q[0]
			sg.ndcg += q[1]
		}
		for _, sc := range list {
			exposure[sc.Item]++
			sg.slots++
			total++
			sg.shown[sc.Item] = true
			if head[sc.Item] {
				sg.headSlots++
			}
		}
	})
	if err != nil {
		return nil, err
	}
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	f := &scorer.CardFairness{K: k, ByCategory: []scorer.CategoryShare{},
		UserSegments: fmt.Sprintf("Users by the number of distinct items in their training history; recall@%d and NDCG@%d over those evaluated on a held-out item; "+
			"head share: share of their recommended slots taken by the 10%% of items with the most training users.", k, k)}
	if len(cats) > 0 {
		byCat := map[string]*scorer.CategoryShare{}
		shown := map[string]int{}
		var allEvents float64
		for i, c := range catOf {
			r := byCat[c]
			if r == nil {
				r = &scorer.CategoryShare{Category: c}
				byCat[c] = r
			}
			r.Items++
			r.InteractionShare += events[i]
			r.ExposureShare += exposure[i]
			allEvents += events[i]
			if exposure[i] > 0 {
				shown[c]++
			}
		}
		for c, r := range byCat {
			r.ExposurePerItem = r.ExposureShare / float64(r.Items)
			r.CatalogShare = float64(r.Items) / float64(ni)
			r.InteractionShare = div(r.InteractionShare, allEvents)
			r.ExposureShare = div(r.ExposureShare, float64(total))
			r.Coverage = float64(shown[c]) / float64(r.Items)
			r.AmplificationRate = div(r.ExposureShare, r.InteractionShare)
			f.ByCategory = append(f.ByCategory, *r)
		}
		sort.Slice(f.ByCategory, func(a, b int) bool { return f.ByCategory[a].Category < f.ByCategory[b].Category })
	}
	for j, sg := range segs {
		f.BySegment = append(f.BySegment, scorer.SegmentShare{
			Segment: userSegments[j].name, Users: sg.users, UserShare: div(float64(sg.users), float64(m.NUsers())),
			EvalUsers: sg.eval, Recall: div(sg.recall, float64(sg.eval)), NDCG: div(sg.ndcg, float64(sg.eval)),
			HeadShare: div(float64(sg.headSlots), float64(sg.slots)), Coverage: float64(len(sg.shown)) / float64(ni),
			Exposures: sg.slots, ShareOfAll: div(float64(sg.slots), float64(total)),
		})
	}
	return f, nil
}

// monitoringPlan is the card's monitoring plan for a model with the given
// offline recall@k and exposure Gini.
func monitoringPlan(k int, gini, recall float64) []string {
	return []string{
		"Effect: the journey's personalized arm against its control arm and permanent holdout (GET /v1/journeys/KEY/comparison, the scheduled journey_comparison job), on the journey's primary metric and guardrails.",
		fmt.Sprintf("Concentration: the journey's daily item-exposure Gini (GET /v1/journeys/KEY/guardrails) against the offline %.3f at k = %d; a sustained rise means recommendations are narrowing.", gini, k),
		"Fallbacks: the share of decisions served the control list for latency or scorer errors (lift_journey_fallbacks_total and lift_journey_fallback_rate on /metrics).",
		fmt.Sprintf("Staleness and quality: retrain at least monthly; each retrain's held-out recall@%d (offline %.4f here) and membership-inference AUC are compared with this card's.", k, recall),
		"Rights: erasures and resets drop units from this model at once (served as unknown) and from the next training; consent withdrawals below tier 2 stop the use of stored history.",
	}
}

// decommissionCriteria is the card's list of conditions for withdrawing the model.
func decommissionCriteria(maxAUC float64) []string {
	return []string{
		"The personalized arm is worse than control on a guardrail, or no better on the primary metric, at the journey's planned sample size.",
		"The held-out recall@k of a retrain falls to the most-popular baseline's or below: the model then adds nothing over the control list.",
		fmt.Sprintf("A retrain's membership-inference AUC exceeds %.2f (the gate), or a privacy incident or regulator request concerns the training data.", maxAUC),
		"The training data no longer reflects the catalog (most recommended items withdrawn) or the consent basis it was collected under changed.",
	}
}
