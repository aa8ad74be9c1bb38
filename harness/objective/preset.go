package objective

import (
	"fmt"
	"slices"
	"strings"
)

// Tier is how much a team promises for a group of tenants. A scenario names its tier and gets
// the tier's objectives unless it writes its own, so teams start from the same yardstick.
type Tier string

// The tiers, strictest first.
const (
	// Critical: tenants must be back within 15 minutes with at most 5 seconds of data lost.
	Critical Tier = "critical"
	// Standard: back within the hour, at most 5 minutes lost. The default tier.
	Standard Tier = "standard"
	// BestEffort: back within 4 hours, at most an hour lost, 99% of rows back.
	BestEffort Tier = "best-effort"
)

// Tiers lists the tiers, strictest first.
func Tiers() []Tier { return []Tier{Critical, Standard, BestEffort} }

// presets are the tiers' objectives. Every tier requires no collateral, intact integrity and
// verified backups: harming bystanders, breaking keys or restoring from broken backups is a
// failure whatever the tier (DESIGN.md, Scoring).
var presets = map[Tier][]string{
	Critical:   {"rto<=15m", "rpo<=5s", "completeness>=100%", "collateral==0", "integrity==ok", "backups==verified"},
	Standard:   {"rto<=1h", "rpo<=5m", "completeness>=100%", "collateral==0", "integrity==ok", "backups==verified"},
	BestEffort: {"rto<=4h", "rpo<=1h", "completeness>=99%", "collateral==0", "integrity==ok", "backups==verified"},
}

// Preset returns the objectives of a tier.
func Preset(t Tier) (Objectives, error) {
	texts, ok := presets[t]
	if !ok {
		return nil, fmt.Errorf("unknown tier %q%s; tiers: %s", t, DidYouMean(string(t), tierNames()),
			strings.Join(tierNames(), ", "))
	}
	objs, err := ParseAll(texts)
	if err != nil {
		return nil, fmt.Errorf("parse preset %s: %w", t, err)
	}
	return objs, nil
}

// Valid reports whether t is one of Tiers.
func (t Tier) Valid() bool { return slices.Contains(Tiers(), t) }

func tierNames() []string {
	out := make([]string, len(Tiers()))
	for i, t := range Tiers() {
		out[i] = string(t)
	}
	return out
}
