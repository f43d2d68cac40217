package api

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/liftlab/lift/experiment"
)

// A holdout cohort's health on the console's holdouts page: for keys that
// see exact numbers, results.HoldoutHealth (GET /v1/holdouts/NAME/health):
// the share against the configured fraction with the anytime-valid
// sequential check, the drift of the daily share, contamination and age. For
// viewers only what needs no exact count: the share computed from the
// cohort's DP release (its noised counts, the numbers the page already
// shows), the configured fraction and the cohort's age, which come from the
// registry; drift, contamination and the sequential check read exact counts
// and are left out with a note.

// cohortHealth is what the page shows of a cohort's health.
type cohortHealth struct {
	Fraction, Share          string
	SRMP, SRMVerdict         string // the sequential check (analysts)
	DriftP, DriftVerdict     string // analysts
	Contaminated, ContamRate string // analysts
	Drawn, Age               string
	RotationDue, Mismatch    bool
	Drift                    bool
	Days                     []cohortHealthDay // analysts
	Note                     string
}

type cohortHealthDay struct {
	Date, Holdout, Exposed, Share string
}

// consoleHoldoutHealth is the exact health of a cohort (keys that see exact
// numbers), from the console's cache (recentResults; its age noted in age).
func (s *Server) consoleHoldoutHealth(ctx context.Context, name string, ver int, age *viewAge) (*cohortHealth, error) {
	hh, err := s.recentResults(age).HoldoutHealth(ctx, name, ver)
	if errors.Is(err, errComputing) {
		return &cohortHealth{Note: "Health checks: " + computingText}, nil
	}
	if err != nil {
		if dataProblem(err) {
			_, _, msg := describe(err)
			return &cohortHealth{Note: "No health checks: " + msg}, nil
		}
		return nil, err
	}
	ch := &cohortHealth{Fraction: pctText(hh.Fraction), Share: pctText(hh.Share),
		SRMP: consoleNum(hh.SequentialSRM.PValue), SRMVerdict: "no mismatch", Mismatch: hh.SequentialSRM.Mismatch,
		DriftP: consoleNum(hh.Drift.PValue), DriftVerdict: "stable", Drift: hh.Drift.Drift,
		Contaminated: strconv.FormatInt(hh.Contaminated, 10), ContamRate: pctText(hh.ContaminationRate),
		Drawn: hh.DrawnAt.UTC().Format("2006-01-02 15:04 MST"), Age: consoleNum(hh.AgeDays), RotationDue: hh.RotationDue}
	if ch.Mismatch {
		ch.SRMVerdict = fmt.Sprintf("MISMATCH (p < %g)", hh.SequentialSRM.Threshold)
	}
	if ch.Drift {
		ch.DriftVerdict = fmt.Sprintf("DRIFT (p < %g)", hh.Drift.Alpha)
	}
	for _, d := range hh.Days {
		ch.Days = append(ch.Days, cohortHealthDay{Date: d.Date, Holdout: strconv.FormatInt(d.Holdout, 10), Exposed: strconv.FormatInt(d.Exposed, 10), Share: pctText(d.Share)})
	}
	return ch, nil
}

// privateHoldoutHealth is a viewer's health of a cohort: the share from the
// DP release's noised counts, the fraction and the age.
func privateHoldoutHealth(h *experiment.Holdout, ver int, noised map[string]int64, now time.Time) *cohortHealth {
	start, end := cohortDates(h, ver)
	until := now
	if end != nil {
		until = *end
	}
	ch := &cohortHealth{Fraction: pctText(h.Fraction), Share: "–", Drawn: start.UTC().Format("2006-01-02 15:04 MST"),
		Age:         consoleNum(until.Sub(start).Hours() / 24),
		RotationDue: end == nil && h.RotationPeriod > 0 && until.Sub(start) >= time.Duration(h.RotationPeriod),
		Note: "The share is computed from this release's noised counts. The drift of the daily share, contamination and the sequential " +
			"sample-ratio check read exact counts and have no differentially private release; analysts see them."}
	if hu, xu := noised["holdout"], noised["exposed"]; hu+xu > 0 {
		ch.Share = pctText(float64(hu) / float64(hu+xu))
	}
	return ch
}

// pctText is a share in percent with 4 significant digits: "9.548%".
func pctText(x float64) string { return consoleNum(100*x) + "%" }
