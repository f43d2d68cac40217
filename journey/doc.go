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
// Guardrails (decision latency quantiles, fallback rate, share of ineligible
// units, Gini of item exposures) are kept live per journey (Decider.Guardrails)
// and rolled up per day into the store (Rollup); Compare puts them beside the
// experiment's and the holdout's results for the scheduled journey comparison.
//
// Journeys order content only. They never set or vary prices.
package journey
