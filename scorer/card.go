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

	// Membership is the membership-inference gate run after training (nil on
	// cards written before it existed).
	Membership *CardMembership `json:"membership_inference,omitempty"`
	// NotDeployable, when set, says why the model failed a training gate: lift
	// serve refuses to load it unless forced (docs/scorer.md#training-gates).
	NotDeployable string `json:"not_deployable,omitempty"`
	// Privacy states the differential-privacy guarantee of the training, when the
	// model was trained with noise.
	Privacy *CardPrivacy `json:"differential_privacy,omitempty"`
	// Fairness is the exposure and coverage of the model's recommendations by item
	// category and by user segment.
	Fairness *CardFairness `json:"fairness,omitempty"`
	// Monitoring is the monitoring plan: what to watch once the model serves.
	Monitoring []string `json:"monitoring_plan,omitempty"`
	// Decommission lists the conditions under which the model is withdrawn.
	Decommission []string `json:"decommission_criteria,omitempty"`
}

// CardMembership is the result of the membership-inference attack of the training
// gate: the attack's AUC at telling users the model was trained on (members) from
// users held out of its training (non-members) by the model's scores, its
// bootstrap interval over users, and the gate's threshold.
type CardMembership struct {
	Attack     string  `json:"attack"`
	Members    int     `json:"members"`     // member users scored
	NonMembers int     `json:"non_members"` // non-member users scored
	AUC        float64 `json:"auc"`
	Low        float64 `json:"auc_low"`
	High       float64 `json:"auc_high"`
	Level      float64 `json:"level"`
	Bootstrap  int     `json:"bootstrap"`
	MaxAUC     float64 `json:"max_auc"` // the gate: AUC above it fails
	Passed     bool    `json:"passed"`
	// CannotDetect says what a passed gate does not show.
	CannotDetect string `json:"cannot_detect,omitempty"`
}

// CardPrivacy states a differential-privacy guarantee of the training.
type CardPrivacy struct {
	Epsilon   float64 `json:"epsilon"`
	Delta     float64 `json:"delta"`
	Unit      string  `json:"unit"`      // what a neighbouring dataset differs by (one user)
	Mechanism string  `json:"mechanism"` // how the noise was added and calibrated
	Protects  string  `json:"protects"`  // which released parts the guarantee covers
	// Sigma is the noise standard deviation per coordinate and sweep; Sensitivity
	// the L2 sensitivity it is calibrated to.
	Sigma       float64 `json:"sigma"`
	Sensitivity float64 `json:"l2_sensitivity"`
	// NonPrivateRecall is recall@k of the same training without noise, so that the
	// accuracy cost (Evaluation.Recall against it) is on the card.
	NonPrivateRecall float64 `json:"non_private_recall_at_k"`
	NonPrivateNDCG   float64 `json:"non_private_ndcg_at_k"`
}

// CardFairness is exposure and coverage by segment over the top-k lists of every
// training user (the lists of CardExposure).
type CardFairness struct {
	K int `json:"k"`
	// ByCategory has one row per item category (items without one under
	// "(none)"); empty when the model has no item categories.
	ByCategory []CategoryShare `json:"by_item_category"`
	// UserSegments says how users are segmented; BySegment has a row per segment.
	UserSegments string         `json:"user_segments"`
	BySegment    []SegmentShare `json:"by_user_segment"`
}

// CategoryShare compares a category's share of the catalog and of the training
// interactions with its share of the recommendations.
type CategoryShare struct {
	Category          string  `json:"category"`
	Items             int     `json:"items"`
	CatalogShare      float64 `json:"catalog_share"`
	InteractionShare  float64 `json:"interaction_share"` // of training events
	ExposureShare     float64 `json:"exposure_share"`    // of recommended slots
	Coverage          float64 `json:"coverage"`          // share of its items recommended at least once
	ExposurePerItem   float64 `json:"exposure_per_item"` // exposures ÷ items
	AmplificationRate float64 `json:"amplification"`     // exposure share ÷ interaction share (0 when it has no interactions)
}

// SegmentShare is the recommendations and quality seen by one user segment.
type SegmentShare struct {
	Segment    string  `json:"segment"`
	Users      int     `json:"users"`
	UserShare  float64 `json:"user_share"`
	EvalUsers  int     `json:"eval_users"` // of them, evaluated on a held-out item
	Recall     float64 `json:"recall_at_k"`
	NDCG       float64 `json:"ndcg_at_k"`
	HeadShare  float64 `json:"head_share"` // of their recommended slots, share taken by the 10% most interacted-with items
	Coverage   float64 `json:"coverage"`   // share of the catalog in their lists
	Exposures  int     `json:"exposures"`
	ShareOfAll float64 `json:"exposure_share"`
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
	c.markdownGates(p)
	if len(c.Limitations) > 0 {
		p("\n## Limitations\n\n")
		for _, s := range c.Limitations {
			p("- %s\n", s)
		}
	}
	return b.String()
}

func (c *Card) markdownGates(p func(string, ...any)) {
	if m := c.Membership; m != nil {
		verdict := "passed"
		if !m.Passed {
			verdict = "FAILED"
		}
		p("\n## Membership inference\n\n%s\n\nAttack AUC %.3f (%.0f%% bootstrap interval over users %.3f to %.3f, %d resamples) over %d member and %d non-member users; "+
			"the gate fails above %.2f: %s.\n", m.Attack, m.AUC, 100*m.Level, m.Low, m.High, m.Bootstrap, m.Members, m.NonMembers, m.MaxAUC, verdict)
		if m.CannotDetect != "" {
			p("\nWhat it cannot detect: %s\n", m.CannotDetect)
		}
	}
	if c.NotDeployable != "" {
		p("\n**Not deployable**: %s\n", c.NotDeployable)
	}
	if d := c.Privacy; d != nil {
		p("\n## Differential privacy\n\n(ε = %g, δ = %g)-differential privacy with respect to %s. %s Protects: %s "+
			"Noise σ = %.4g per coordinate and sweep for an L2 sensitivity of %.4g. Accuracy cost: recall@%d %.4f with noise against %.4f without, NDCG %.4f against %.4f.\n",
			d.Epsilon, d.Delta, d.Unit, d.Mechanism, d.Protects, d.Sigma, d.Sensitivity, c.Evaluation.K, c.Evaluation.Recall, d.NonPrivateRecall, c.Evaluation.NDCG, d.NonPrivateNDCG)
	}
	if f := c.Fairness; f != nil {
		p("\n## Fairness and coverage by segment\n\nOver the top-%d lists of every training user.\n\n", f.K)
		if len(f.ByCategory) > 0 {
			p("| item category | items | catalog share | interaction share | exposure share | amplification | coverage |\n|---|---|---|---|---|---|---|\n")
			for _, r := range f.ByCategory {
				p("| %s | %d | %.3f | %.3f | %.3f | %.2f | %.3f |\n", r.Category, r.Items, r.CatalogShare, r.InteractionShare, r.ExposureShare, r.AmplificationRate, r.Coverage)
			}
			p("\n")
		}
		p("%s\n\n| user segment | users | evaluated | recall@%d | NDCG@%d | head share | catalog coverage | exposure share |\n|---|---|---|---|---|---|---|---|\n", f.UserSegments, f.K, f.K)
		for _, r := range f.BySegment {
			p("| %s | %d | %d | %.4f | %.4f | %.3f | %.3f | %.3f |\n", r.Segment, r.Users, r.EvalUsers, r.Recall, r.NDCG, r.HeadShare, r.Coverage, r.ShareOfAll)
		}
	}
	if len(c.Monitoring) > 0 {
		p("\n## Monitoring plan\n\n")
		for _, s := range c.Monitoring {
			p("- %s\n", s)
		}
	}
	if len(c.Decommission) > 0 {
		p("\n## Decommission criteria\n\n")
		for _, s := range c.Decommission {
			p("- %s\n", s)
		}
	}
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
