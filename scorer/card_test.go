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
	for _, want := range []string{"# Model card: shop (version 3)", "| this model | 0.5000 | 0.2500 |", "Gini of item exposures 0.400", "pricing"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if _, err := LoadCard(context.Background(), filepath.Join(dir, "none.card.json")); !experiment.Is(err, experiment.NotFound) {
		t.Errorf("missing card: err = %v", err)
	}
}
