package costmodel

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// The restore phases the model fits, with the features each one's time grows with: a sidecar's
// provision restores the base backup (shard data), its replay applies the WAL since, and the
// merge copies the harmed tenants' rows back.
const (
	PhaseProvision = "provision"
	PhaseReplay    = "replay"
	PhaseMerge     = "merge"
)

// PhaseFeatures lists, in order, the phases fitted and the features of each.
var PhaseFeatures = []struct {
	Phase    string
	Features []Feature
}{
	{PhaseProvision, []Feature{Fixed, DataGB}},
	{PhaseReplay, []Feature{Fixed, WALGB}},
	{PhaseMerge, []Feature{Fixed, Tenants, Rows}},
}

// Curves are the fitted curves of every phase, measured on one machine.
type Curves struct {
	// Machine says where the points were measured (cores, memory, provider).
	Machine string  `json:"machine"`
	Curves  []Curve `json:"curves"`
}

// FitAll fits every phase of PhaseFeatures to its points.
func FitAll(machine string, points map[string][]Point) (Curves, error) {
	out := Curves{Machine: machine}
	for _, pf := range PhaseFeatures {
		c, err := Fit(pf.Phase, pf.Features, points[pf.Phase])
		if err != nil {
			return out, err
		}
		out.Curves = append(out.Curves, c)
	}
	return out, nil
}

// UnmarshalJSON reads curves written by a measurement and fits them again from their points,
// so that a projection from a file carries the same error as one made where it was measured.
func (c *Curves) UnmarshalJSON(data []byte) error {
	var raw struct {
		Machine string  `json:"machine"`
		Curves  []Curve `json:"curves"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	c.Machine, c.Curves = raw.Machine, nil
	for _, r := range raw.Curves {
		f, err := Fit(r.Phase, r.Features, r.Points)
		if err != nil {
			return err
		}
		c.Curves = append(c.Curves, f)
	}
	return nil
}

// Production is the size a projection is made for: the production fleet and the incident.
type Production struct {
	// DataGB is the fleet's data, all shards together.
	DataGB float64 `yaml:"dataGB" json:"data_gb"`
	// WALGBPerHour is the WAL the fleet writes per hour, all shards together.
	WALGBPerHour float64 `yaml:"walGBPerHour" json:"wal_gb_per_hour"`
	// BackupAge is how old the newest base backup is when the harm happens, at worst: the WAL a
	// sidecar replays is what was written since.
	BackupAge time.Duration `yaml:"backupAge" json:"backup_age"`
	// Tenants is how many tenants the incident harms; RowsPerTenant their average size.
	Tenants       int     `yaml:"tenants" json:"tenants"`
	RowsPerTenant float64 `yaml:"rowsPerTenant" json:"rows_per_tenant"`
	// Shards is how many shards the fleet has; the harmed tenants are spread over all of them.
	Shards int `yaml:"shards" json:"shards"`
}

// Check says what is wrong with p, naming the field.
func (p Production) Check() error {
	var errs []error
	if p.DataGB <= 0 {
		errs = append(errs, errors.New("dataGB must be above 0"))
	}
	if p.WALGBPerHour < 0 {
		errs = append(errs, errors.New("walGBPerHour must not be negative"))
	}
	if p.BackupAge < 0 {
		errs = append(errs, errors.New("backupAge must not be negative"))
	}
	if p.Tenants < 1 {
		errs = append(errs, errors.New("tenants must be at least 1"))
	}
	if p.RowsPerTenant <= 0 {
		errs = append(errs, errors.New("rowsPerTenant must be above 0"))
	}
	if p.Shards < 1 {
		errs = append(errs, errors.New("shards must be at least 1"))
	}
	return errors.Join(errs...)
}

// ShardWork is one shard's share of the production incident, the unit the curves are fitted
// on: shards restore in parallel, each on servers of its own, so the slowest shard's restore is
// the RTO, and the harmed tenants are spread evenly (rounded up).
func (p Production) ShardWork() map[string]map[Feature]float64 {
	shards := float64(p.Shards)
	tenants := math.Ceil(float64(p.Tenants) / shards)
	return map[string]map[Feature]float64{
		PhaseProvision: {DataGB: p.DataGB / shards},
		PhaseReplay:    {WALGB: p.WALGBPerHour * p.BackupAge.Hours() / shards},
		PhaseMerge:     {Tenants: tenants, Rows: tenants * p.RowsPerTenant / 1e6},
	}
}

// PhaseProjection is one phase's projected time, as a range.
type PhaseProjection struct {
	Phase string `json:"phase"`
	// Work is the phase's work on one shard.
	Work map[Feature]float64 `json:"work"`
	// Seconds is the fit's estimate; Low and High bound its 95% prediction interval (High is
	// +Inf, written null, when the fit has no error estimate).
	Seconds float64  `json:"seconds"`
	Low     float64  `json:"low_seconds"`
	High    *float64 `json:"high_seconds"`
	// Extrapolation is how many times the largest measured amount of a feature the projection
	// reaches: far beyond 1, the curve is trusted far from where it was measured.
	Extrapolation float64 `json:"extrapolation"`
}

// Projection is the RTO projected for a production size from a machine's curves: never a
// measured RTO, and labelled so wherever it is shown.
type Projection struct {
	// Label says what this is, for every place that shows it.
	Label      string            `json:"label"`
	Production Production        `json:"production"`
	Machine    string            `json:"machine"`
	Phases     []PhaseProjection `json:"phases"`
	// Seconds, Low and High are the restore's total (the phases run one after the other on a
	// shard); Low and High add up the phases' bounds, which is wider than their joint interval.
	Seconds float64  `json:"seconds"`
	Low     float64  `json:"low_seconds"`
	High    *float64 `json:"high_seconds"`
	// Dominant is the phase that takes longest, and Advice what would shorten it.
	Dominant string `json:"dominant"`
	Advice   string `json:"advice"`
}

// ProjectionLabel heads every projection.
const ProjectionLabel = "projection from this machine's measurements, not a measured RTO"

// Project projects the restore of p from curves, phase by phase.
func Project(curves Curves, p Production) (Projection, error) {
	if err := p.Check(); err != nil {
		return Projection{}, fmt.Errorf("check production size: %w", err)
	}
	out := Projection{Label: ProjectionLabel, Production: p, Machine: curves.Machine}
	work := p.ShardWork()
	high := 0.0
	for _, pf := range PhaseFeatures {
		i := slices.IndexFunc(curves.Curves, func(c Curve) bool { return c.Phase == pf.Phase })
		if i < 0 {
			return out, fmt.Errorf("project %s: no curve measured for it", pf.Phase)
		}
		c := curves.Curves[i]
		s, half := c.Predict(work[pf.Phase])
		pp := PhaseProjection{Phase: pf.Phase, Work: work[pf.Phase], Seconds: s, Low: max(0, s-half), Extrapolation: extrapolation(c, work[pf.Phase])}
		if !math.IsInf(half, 1) {
			h := s + half
			pp.High = &h
		}
		out.Phases = append(out.Phases, pp)
		out.Seconds += pp.Seconds
		out.Low += pp.Low
		if pp.High == nil || math.IsInf(high, 1) {
			high = math.Inf(1)
		} else {
			high += *pp.High
		}
	}
	if !math.IsInf(high, 1) {
		out.High = &high
	}
	dom := slices.MaxFunc(out.Phases, func(a, b PhaseProjection) int { return cmp.Compare(a.Seconds, b.Seconds) })
	out.Dominant, out.Advice = dom.Phase, advice(dom.Phase)
	return out, nil
}

// extrapolation is how far work reaches beyond the largest amount of each feature measured.
func extrapolation(c Curve, work map[Feature]float64) float64 {
	most := 0.0
	for f, v := range work {
		var seen float64
		for _, p := range c.Points {
			seen = max(seen, p.Work[f])
		}
		if seen > 0 {
			most = max(most, v/seen)
		}
	}
	return most
}

// advice says what would shorten a phase that dominates the restore.
func advice(phase string) string {
	switch phase {
	case PhaseProvision:
		return "restoring the base backup dominates: a delayed standby (restore.strategy: delayed-standby) is already laid out and skips it, as do more, smaller shards"
	case PhaseReplay:
		return "replaying WAL dominates: it grows with the WAL written since the last base backup; take base backups more often, or keep a delayed standby, which replays only its delay"
	case PhaseMerge:
		return "merging the tenants' rows dominates: it grows with the rows harmed per shard; more parallelism (more shards, or merge groups run side by side) divides it"
	}
	return ""
}

// Summary is the projection in one line: "projected RTO 4 min 10 s (3 min 2 s – 5 min 30 s), merge dominates".
func (p Projection) Summary() string {
	high := "unknown"
	if p.High != nil {
		high = fmtSeconds(*p.High)
	}
	return fmt.Sprintf("projected RTO %s (%s – %s), %s dominates", fmtSeconds(p.Seconds), fmtSeconds(p.Low), high, p.Dominant)
}

func fmtSeconds(s float64) string {
	return (time.Duration(s * float64(time.Second))).Round(time.Second).String()
}
