package scorer

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/liftlab/lift/experiment"
)

// Card is a model card (Mitchell et al. 2019, "Model Cards for Model Reporting",
// FAT*): what a model was trained on, how well it ranks, what it is for and not for,
// how concentrated its recommendations are, and how a user resets their profile.
// It is written next to the model file as JSON and Markdown.
type Card struct {
	Name       string             `json:"name"`
	Version    string             `json:"version"`
	Created    time.Time          `json:"created"`
	Algorithm  string             `json:"algorithm"`
	Parameters map[string]float64 `json:"parameters"`
	Data       CardData           `json:"data"`
	Evaluation CardEvaluation     `json:"evaluation"`
	Exposure   CardExposure       `json:"exposure"`
	// IntendedUse says what the model is for.
	IntendedUse string `json:"intended_use"`
	// NotFor lists uses the model must not serve; it always includes pricing.
	NotFor []string `json:"not_for"`
	// ProfileReset tells a user how to reset their profile.
	ProfileReset string   `json:"profile_reset"`
	Limitations  []string `json:"limitations,omitempty"`
}

// CardData describes the training data.
type CardData struct {
	Description  string    `json:"description"`
	Users        int       `json:"users"`
	Items        int       `json:"items"`
	Interactions int       `json:"interactions"` // distinct (user, item) pairs
	Events       int       `json:"events"`       // input rows
	From         time.Time `json:"from,omitzero"`
	To           time.Time `json:"to,omitzero"`
}

// CardEvaluation is the offline ranking quality on held-out interactions, for the
// model and for a most-popular baseline under the same protocol.
type CardEvaluation struct {
	Protocol       string  `json:"protocol"`
	K              int     `json:"k"`
	Users          int     `json:"users"` // users evaluated
	Recall         float64 `json:"recall_at_k"`
	NDCG           float64 `json:"ndcg_at_k"`
	BaselineRecall float64 `json:"popularity_recall_at_k"`
	BaselineNDCG   float64 `json:"popularity_ndcg_at_k"`
}

// CardExposure measures how concentrated the model's recommendations are: the top-k
// list of every training user, counted per catalog item.
type CardExposure struct {
	K        int     `json:"k"`
	Gini     float64 `json:"gini"`     // Gini of item exposure counts (Gini)
	Coverage float64 `json:"coverage"` // share of the catalog recommended at least once
	// BaselineGini is the same for the popularity baseline (everyone gets the same list).
	BaselineGini float64 `json:"popularity_gini"`
}

// NotForPricing is the entry every card carries in NotFor.
const NotForPricing = "pricing: recommendations must never set or vary a price, discount or fee for a user"

// DefaultProfileReset is the profile-reset text of cards built by the trainer.
const DefaultProfileReset = "A user resets their profile with POST /v1/units/ID/reset, by withdrawing " +
	"personalization consent (PUT /v1/units/ID/consent below tier 2), or by erasure (DELETE /v1/units/ID): " +
	"the item history is removed from their events, this model stops using their vector at the next decision " +
	"and the next model does not know them; meanwhile they are scored only from the recent items sent with " +
	"each request (fold-in), so an empty history gives the control journey."

// JSON returns the card as indented JSON.
func (c *Card) JSON() ([]byte, error) { return json.MarshalIndent(c, "", "  ") }

// Markdown renders the card for people.
func (c *Card) Markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Model card: %s (version %s)\n\n", c.Name, c.Version)
	if !c.Created.IsZero() {
		p("Created %s. ", c.Created.UTC().Format(time.RFC3339))
	}
	p("Algorithm: %s.\n\n", c.Algorithm)
	if len(c.Parameters) > 0 {
		keys := make([]string, 0, len(c.Parameters))
		for k := range c.Parameters {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		p("| parameter | value |\n|---|---|\n")
		for _, k := range keys {
			p("| %s | %g |\n", k, c.Parameters[k])
		}
		p("\n")
	}
	p("## Training data\n\n%s\n\n", c.Data.Description)
	p("%d users, %d items, %d distinct user–item interactions from %d events", c.Data.Users, c.Data.Items, c.Data.Interactions, c.Data.Events)
	if !c.Data.From.IsZero() {
		p(", %s to %s", c.Data.From.UTC().Format("2006-01-02"), c.Data.To.UTC().Format("2006-01-02"))
	}
	p(".\n\n")
	e := c.Evaluation
	p("## Evaluation\n\n%s\n\n", e.Protocol)
	p("| model | recall@%d | NDCG@%d |\n|---|---|---|\n", e.K, e.K)
	p("| this model | %.4f | %.4f |\n", e.Recall, e.NDCG)
	p("| most popular (baseline) | %.4f | %.4f |\n\n", e.BaselineRecall, e.BaselineNDCG)
	p("%d users evaluated.\n\n", e.Users)
	x := c.Exposure
	p("## Exposure concentration\n\n")
	p("Over the top-%d lists of every training user: Gini of item exposures %.3f (most-popular baseline %.3f); "+
		"%.1f%% of the catalog is recommended at least once. A Gini near 1 means a few items take most exposures; "+
		"watch it rise over time.\n\n", x.K, x.Gini, x.BaselineGini, 100*x.Coverage)
	p("## Intended use\n\n%s\n\n", c.IntendedUse)
	p("## Not for\n\n")
	for _, s := range c.NotFor {
		p("- %s\n", s)
	}
	p("\n## Resetting a profile\n\n%s\n", c.ProfileReset)
	if len(c.Limitations) > 0 {
		p("\n## Limitations\n\n")
		for _, s := range c.Limitations {
			p("- %s\n", s)
		}
	}
	return b.String()
}

// CardPaths returns where the card of the model file modelPath is written:
// "shop.safetensors" → "shop.card.json", "shop.card.md".
func CardPaths(modelPath string) (jsonPath, markdownPath string) {
	base := strings.TrimSuffix(modelPath, filepath.Ext(modelPath))
	return base + ".card.json", base + ".card.md"
}

// Save writes the card as JSON and Markdown beside the model file modelPath (see
// CardPaths), each atomically (a temporary file renamed into place).
func (c *Card) Save(ctx context.Context, modelPath string) error {
	const op = "scorer.Card.Save"
	if err := ctx.Err(); err != nil {
		return experiment.E(op, experiment.Unavailable, err)
	}
	js, err := c.JSON()
	if err != nil {
		return experiment.E(op, experiment.Internal, err)
	}
	jp, mp := CardPaths(modelPath)
	for _, f := range []struct {
		path string
		data []byte
	}{{jp, js}, {mp, []byte(c.Markdown())}} {
		if err := writeAtomic(f.path, f.data); err != nil {
			return experiment.E(op, experiment.Internal, err)
		}
	}
	return nil
}

// LoadCard reads a card written by Save (the JSON file).
func LoadCard(ctx context.Context, jsonPath string) (*Card, error) {
	const op = "scorer.LoadCard"
	if err := ctx.Err(); err != nil {
		return nil, experiment.E(op, experiment.Unavailable, err)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		kind := experiment.Internal
		if os.IsNotExist(err) {
			kind = experiment.NotFound
		}
		return nil, experiment.E(op, kind, err)
	}
	var c Card
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, experiment.E(op, experiment.Invalid, experiment.Field(jsonPath), err)
	}
	return &c, nil
}

// writeAtomic writes data to a temporary file beside path and renames it there.
func writeAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
