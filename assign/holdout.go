package assign

import (
	"strconv"
	"time"

	"github.com/liftlab/lift/experiment"
)

// HoldoutSalt returns the salt of a holdout's version: name + "/v" + version,
// e.g. "long-term/v3". The registry gives every holdout version this salt, so a
// client that knows a holdout's name and current version can recompute its
// membership without being told the salt.
func HoldoutSalt(name string, version int) string {
	return name + "/v" + strconv.Itoa(version)
}

// InHoldout reports whether unit is in the current version of h:
//
//	Hash(salt, unit, 2) < fraction
//
// with salt = h.Salt, or HoldoutSalt(h.Name, h.Version) when h.Salt is empty.
// An empty unit is in no holdout.
func InHoldout(unit string, h *experiment.Holdout) bool {
	if unit == "" || h == nil {
		return false
	}
	salt := h.Salt
	if salt == "" {
		salt = HoldoutSalt(h.Name, h.Version)
	}
	return hashV2(fnvString(fnvOffset, salt), unit) < h.Fraction
}

// DueForRotation reports whether h has a rotation period and its current version
// has lasted at least that long at now: now >= RotatedAt + RotationPeriod.
// Holdouts rotated by hand only (period 0) are never due.
func DueForRotation(h *experiment.Holdout, now time.Time) bool {
	if h == nil || h.RotationPeriod <= 0 {
		return false
	}
	return !now.Before(h.RotatedAt.Add(time.Duration(h.RotationPeriod)))
}

// Rotate starts the next version of h at now: the current version is recorded in
// h.Versions (if it is not there yet) and closed at now, Version is incremented,
// Salt becomes HoldoutSalt(name, new version) and RotatedAt becomes now. Units
// are drawn afresh under the new salt; the closed cohorts stay in h.Versions.
func Rotate(h *experiment.Holdout, now time.Time) {
	if n := len(h.Versions); n == 0 || h.Versions[n-1].Version != h.Version {
		salt := h.Salt
		if salt == "" {
			salt = HoldoutSalt(h.Name, h.Version)
		}
		h.Versions = append(h.Versions, experiment.HoldoutVersion{Version: h.Version, Salt: salt, Start: h.RotatedAt})
	}
	end := now
	h.Versions[len(h.Versions)-1].End = &end
	h.Version++
	h.Salt = HoldoutSalt(h.Name, h.Version)
	h.RotatedAt = now
	h.Versions = append(h.Versions, experiment.HoldoutVersion{Version: h.Version, Salt: h.Salt, Start: now})
}
