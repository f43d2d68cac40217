package scorer

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/liftlab/lift/experiment"
)

func TestCardSaveLoad(t *testing.T) {
	c := &Card{
		Name: "shop", Version: "3", Created: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Algorithm: "ALS",
		Parameters: map[string]float64{"factors": 64},
		Data:       CardData{Description: "clicks", Users: 10, Items: 5, Interactions: 30, Events: 40},
		Evaluation: CardEvaluation{Protocol: "leave-last-out", K: 10, Users: 9, Recall: 0.5, NDCG: 0.25, BaselineRecall: 0.2, BaselineNDCG: 0.1},
		Exposure:   CardExposure{K: 10, Gini: 0.4, Coverage: 0.8, BaselineGini: 0.9},
		NotFor:     []string{NotForPricing}, ProfileReset: DefaultProfileReset, IntendedUse: "ranking",
		Membership:    &CardMembership{Attack: "score-based", Members: 300, NonMembers: 9, AUC: 0.71, Low: 0.65, High: 0.77, Level: 0.95, Bootstrap: 1000, MaxAUC: 0.6},
		NotDeployable: "membership-inference AUC 0.710 is above the gate's 0.60",
		Privacy:       &CardPrivacy{Epsilon: 2, Delta: 1e-6, Unit: "one user", Mechanism: "Gaussian.", Protects: "item factors.", Sigma: 12.5, Sensitivity: 3, NonPrivateRecall: 0.6, NonPrivateNDCG: 0.3},
		Fairness: &CardFairness{K: 10, ByCategory: []CategoryShare{{Category: "books", Items: 3, CatalogShare: 0.6, InteractionShare: 0.5, ExposureShare: 0.7, Coverage: 1, AmplificationRate: 1.4}},
			UserSegments: "by history length", BySegment: []SegmentShare{{Segment: "1-4 items", Users: 10, EvalUsers: 9, Recall: 0.5}}},
		Monitoring:   []string{"watch the Gini"},
		Decommission: []string{"worse than control"},
	}
	dir := t.TempDir()
	model := filepath.Join(dir, "shop.safetensors")
	if err := c.Save(context.Background(), model); err != nil {
		t.Fatal(err)
	}
	jp, mp := CardPaths(model)
	if jp != filepath.Join(dir, "shop.card.json") || mp != filepath.Join(dir, "shop.card.md") {
		t.Fatalf("CardPaths = %s, %s", jp, mp)
	}
	got, err := LoadCard(context.Background(), jp)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != "shop" || got.Evaluation.Recall != 0.5 || got.Exposure.Gini != 0.4 || !got.Created.Equal(c.Created) || got.NotFor[0] != NotForPricing {
		t.Fatalf("loaded %+v", got)
	}
	md, _ := os.ReadFile(mp)
	if got.Membership == nil || got.Membership.AUC != 0.71 || got.Privacy == nil || got.Privacy.Epsilon != 2 || got.Fairness == nil ||
		got.Fairness.ByCategory[0].AmplificationRate != 1.4 || got.NotDeployable == "" || got.Monitoring[0] != "watch the Gini" || got.Decommission[0] != "worse than control" {
		t.Errorf("loaded gates and sections %+v", got)
	}
	for _, want := range []string{"# Model card: shop (version 3)", "| this model | 0.5000 | 0.2500 |", "Gini of item exposures 0.400", "pricing",
		"Attack AUC 0.710 (95% bootstrap interval over users 0.650 to 0.770, 1000 resamples) over 300 member and 9 non-member users; the gate fails above 0.60: FAILED",
		"**Not deployable**: membership-inference AUC 0.710", "(ε = 2, δ = 1e-06)-differential privacy with respect to one user",
		"recall@10 0.5000 with noise against 0.6000 without", "| books | 3 | 0.600 | 0.500 | 0.700 | 1.40 | 1.000 |",
		"| 1-4 items | 10 | 9 | 0.5000 |", "## Monitoring plan\n\n- watch the Gini", "## Decommission criteria\n\n- worse than control"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if _, err := LoadCard(context.Background(), filepath.Join(dir, "none.card.json")); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("missing card: err = %v", err)
	}
}
