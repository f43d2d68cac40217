package reports

import (
	"fmt"
	"math"
	"strconv"
	"time"

	"gonum.org/v1/plot"
)

// niceTicks labels a numeric axis at round numbers: multiples of a step of 1, 2, 2.5
// or 5 × 10^k, the smallest such step that needs at most 6 intervals to cover the
// range (matplotlib's MaxNLocator with nbins = 6 and those steps, without its
// offset), so that 0 carries a label whenever the range spans it. Unlabelled minor
// ticks divide each step in 4 or 5. (plot.DefaultTicks labelled −3, 6, 15 on
// [−4, 16] and −7.5, 2.5, 12.5 on [−9, 14].)
type niceTicks struct{}

// niceBins is the most intervals between labelled ticks.
const niceBins = 6

func (niceTicks) Ticks(min, max float64) []plot.Tick {
	if !(max > min) || math.IsInf(max-min, 0) {
		return nil
	}
	step, minor := niceStep((max - min) / niceBins)
	// A larger step can leave fewer than two labels inside the range; take smaller ones then.
	for range 8 {
		if math.Floor(max/step)-math.Ceil(min/step) >= 1 {
			break
		}
		step, minor = niceStep(step / 2.01)
	}
	dec := decimals(step)
	var ts []plot.Tick
	sub := step / float64(minor)
	for i := math.Ceil(min / sub); i <= math.Floor(max/sub); i++ {
		v := i * sub
		t := plot.Tick{Value: v}
		if k := math.Round(v / step); math.Abs(v/step-k) < 1e-9 {
			t.Value = k * step
			t.Label = formatTick(t.Value, dec)
		}
		ts = append(ts, t)
	}
	return ts
}

// niceStep returns the smallest step of 1, 2, 2.5 or 5 × 10^k not below raw, and the
// number of minor intervals in it.
func niceStep(raw float64) (step float64, minor int) {
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []struct {
		f     float64
		minor int
	}{{1, 5}, {2, 4}, {2.5, 5}, {5, 5}, {10, 5}} {
		if s := m.f * p; s >= raw*(1-1e-12) {
			return s, m.minor
		}
	}
	return 10 * p, 5
}

// decimals is the number of decimals that print every multiple of step exactly.
func decimals(step float64) int {
	for d := 0; d < 15; d++ {
		if s := step * math.Pow(10, float64(d)); math.Abs(s-math.Round(s)) < 1e-9*math.Max(1, s) {
			return d
		}
	}
	return 15
}

func formatTick(v float64, dec int) string {
	if v == 0 {
		v = 0 // no "-0"
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}

// thousands labels ticks with thousands separators (1,000,000).
type thousands struct{}

func (thousands) Ticks(min, max float64) []plot.Tick {
	ts := niceTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = group(ts[i].Value)
		}
	}
	return ts
}

func group(v float64) string {
	s := fmt.Sprintf("%.0f", math.Abs(v))
	out := make([]byte, 0, len(s)+len(s)/3)
	for i := range len(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	if v < 0 {
		return "-" + string(out)
	}
	return string(out)
}

// dayTicks labels an axis of Unix seconds with calendar dates (UTC): a labelled tick
// at midnight every 1, 2, 7 or 14 days (weeks from Mondays), so that at most 7 carry
// a label, with a small tick every day; beyond 70 days, the first of every 1, 2, 3,
// 6 or 12 months; under two days, hours. (plot.TimeTicks puts ticks at round numbers
// of seconds, not at midnights, so that two ticks could carry the same date and a
// date's label could sit a day away from its data.)
type dayTicks struct{}

func (dayTicks) Ticks(min, max float64) []plot.Tick {
	const hour, day = 3600.0, 86400.0
	span := max - min
	utc := func(v float64) time.Time { return time.Unix(int64(v), 0).UTC() }
	var ts []plot.Tick
	switch {
	case span < 2*day:
		step := 24 * hour
		for _, h := range []float64{1, 2, 3, 6, 12} {
			if span/(h*hour) <= 6 {
				step = h * hour
				break
			}
		}
		for v := math.Ceil(min/step) * step; v <= max; v += step {
			ts = append(ts, plot.Tick{Value: v, Label: utc(v).Format("Jan 2 15:04")})
		}
	case span > 70*day:
		months := 12
		for _, m := range []int{1, 2, 3, 6} {
			if span/(float64(m)*30.44*day) <= 6 {
				months = m
				break
			}
		}
		t0 := utc(min)
		m := time.Date(t0.Year(), t0.Month(), 1, 0, 0, 0, 0, time.UTC)
		if m.Before(t0) {
			m = m.AddDate(0, 1, 0)
		}
		for ; float64(m.Unix()) <= max; m = m.AddDate(0, 1, 0) {
			if (int(m.Month())-1)%months == 0 {
				ts = append(ts, plot.Tick{Value: float64(m.Unix()), Label: m.Format("Jan 2006")})
			}
		}
	default:
		step := 14.0
		for _, s := range []float64{1, 2, 7} {
			if span/(s*day) <= 6 {
				step = s
				break
			}
		}
		// Day numbers since 1970-01-01 (a Thursday); weekly steps start on Mondays (day 4).
		offset := 0.0
		if step >= 7 {
			offset = 4
		}
		for d := math.Ceil(min / day); d <= math.Floor(max/day); d++ {
			t := plot.Tick{Value: d * day}
			if math.Mod(d-offset, step) == 0 {
				t.Label = utc(t.Value).Format("Jan 2")
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// integerTicks puts a labelled tick on every integer (every k-th when there are many).
type integerTicks struct{}

func (integerTicks) Ticks(min, max float64) []plot.Tick {
	lo, hi := math.Ceil(min), math.Floor(max)
	step := math.Max(1, math.Ceil((hi-lo+1)/15))
	var ts []plot.Tick
	for v := lo; v <= hi; v++ {
		t := plot.Tick{Value: v}
		if math.Mod(v, step) == 0 {
			t.Label = fmt.Sprintf("%.0f", v)
		}
		ts = append(ts, t)
	}
	return ts
}
