// Package journey serves personalized journeys: for each decision request it
// assigns the unit with the journey's experiment and permanent holdout (package
// assign), then either ranks the catalog with the journey's model (package
// scorer, through a dynamic Batcher, within the journey's latency budget) or
// serves the control journey, and logs the decision and the exposure through the
// store.
//
// Policies: "ineligible" (consent below the journey's tier, the experiment not
// running, or the unit outside it: control journey, no exposure), "holdout"
// (control journey, holdout exposure), "control" (the control variant),
// "personalized" (a treatment variant ranked by the model) and "fallback" (a
// treatment unit whose ranking missed the budget or failed: control journey,
// exposure in its assigned variant, so the analysis stays intention-to-treat).
//
// Consent: the unit's stored consent (store.RecordConsent) wins over the
// request's when stricter; its tier decides the model's inputs (tier 1: the
// session's recent items, folded in; tier 2: also the unit's trained vector,
// unless it reset its profile or was erased after the model was trained). Each
// decision stores its Provenance (consent, signals, model, exploration, rules).
//
// Guardrails (decision latency quantiles, fallback rate, share of ineligible
// units, Gini of item exposures) are kept live per journey (Decider.Guardrails)
// and rolled up per day into the store (Rollup); Compare puts them beside the
// experiment's and the holdout's results for the scheduled journey comparison.
//
// Journeys order content only. They never set or vary prices.
package journey
