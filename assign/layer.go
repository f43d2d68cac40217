package assign

import "github.com/liftlab/lift/experiment"

// CheckLayerSlice returns an Invalid error on field "layer_range" when the
// candidate's slice of its layer overlaps the slice of another experiment of the
// same layer, naming that experiment; nil otherwise. Stopped experiments, the
// candidate itself (same key) and experiments of other layers are ignored, as is
// a candidate in no layer. Slices are half-open, so [0, 0.5) and [0.5, 1) do not
// overlap.
func CheckLayerSlice(candidate *experiment.Experiment, others []*experiment.Experiment) error {
	if candidate == nil || candidate.Layer == "" || candidate.LayerRange == nil {
		return nil
	}
	c := *candidate.LayerRange
	for _, o := range others {
		if o == nil || o.Key == candidate.Key || o.Status == experiment.Stopped ||
			o.Layer != candidate.Layer || o.LayerRange == nil {
			continue
		}
		if r := *o.LayerRange; c.Overlaps(r) {
			return experiment.E("assign.CheckLayerSlice", experiment.Invalid, experiment.Field("layer_range"),
				experiment.Errorf("[%g, %g) of layer %q overlaps experiment %q, which holds [%g, %g)",
					c.Start, c.End, candidate.Layer, o.Key, r.Start, r.End))
		}
	}
	return nil
}
