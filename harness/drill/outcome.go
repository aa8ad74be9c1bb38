package drill

import (
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/reports"
)

// Event is one timed step on the drill's timeline. Offsets are from the drill's start, measured
// on the monotonic clock.
type Event struct {
	Name string `json:"name"`
	// Shard is the shard a restore phase ran on; -1 for drill-wide events.
	Shard int           `json:"shard"`
	Start time.Duration `json:"start"`
	End   time.Duration `json:"end"`
	// At is the wall-clock start, for people matching the timeline with their logs.
	At time.Time `json:"at"`
	// Error says why the step failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// TenantScore is how completely one affected tenant came back.
type TenantScore struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
	// Expected counts the rows the tenant must hold: its rows before the incident plus its
	// acknowledged writes.
	Expected int64 `json:"expected"`
	// Lost are expected rows that are missing; Wrong are present with other contents.
	Lost  int64 `json:"lost"`
	Wrong int64 `json:"wrong"`
	// Duplicated rows are second copies of a key; Resurrected rows were deleted before the
	// incident and are back; Unexpected rows exist but were never written.
	Duplicated  int64 `json:"duplicated"`
	Resurrected int64 `json:"resurrected"`
	Unexpected  int64 `json:"unexpected"`
	// Indeterminate rows differ only where a write's outcome is unknown.
	Indeterminate int64 `json:"indeterminate"`
	// Examples names a few differing rows, as table(key).
	Examples []string `json:"examples,omitempty"`
}

// Bad counts the tenant's rows that are not as they must be.
func (t TenantScore) Bad() int64 {
	return t.Lost + t.Wrong + t.Duplicated + t.Resurrected + t.Unexpected
}

// Complete reports whether the tenant is exactly as it must be.
func (t TenantScore) Complete() bool { return t.Bad() == 0 }

// Harmed is a table of an unaffected tenant that differs from what its own acknowledged writes
// say it must hold: collateral damage.
type Harmed struct {
	truth.Mismatch
	Shard int `json:"shard"`
}

// Rows is how many rows of the table differ, at least: a changed row among unchanged counts
// cannot be told from the fingerprint alone, so it counts once.
func (h Harmed) Rows() int64 { return max(1, abs(h.Want.Rows-h.Got.Rows)) }

// BlastRadius compares a rollout's damage with the damage the same script would have done
// without rings.
type BlastRadius struct {
	TargetedTenants int   `json:"targeted_tenants"`
	TargetedRows    int64 `json:"targeted_rows"`
	HarmedTenants   int   `json:"harmed_tenants"`
	HarmedRows      int64 `json:"harmed_rows"`
}

// Check is one integrity check after the restore.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail"`
}

// Outcome is everything a drill found, the facts every report is rendered from.
type Outcome struct {
	RunID      string          `json:"run_id"`
	ScenarioID string          `json:"scenario_id"`
	Strategy   string          `json:"strategy"`
	Seed       uint64          `json:"seed"`
	Provider   string          `json:"provider"`
	Layout     fixtures.Layout `json:"layout"`
	Shards     int             `json:"shards"`
	Tenants    int             `json:"tenants"`
	Rows       int64           `json:"rows"`
	Started    time.Time       `json:"started"`
	Finished   time.Time       `json:"finished"`

	Events   []Event          `json:"events"`
	Incident *incident.Record `json:"incident,omitempty"`
	// Rings and BlastRadius are set for rollouts: where the guards contained the damage, and
	// how much a rollout without rings would have harmed.
	Rings       []incident.RingResult `json:"rings,omitempty"`
	BlastRadius *BlastRadius          `json:"blast_radius,omitempty"`
	Restore     *restore.Result       `json:"restore,omitempty"`
	Writes      int                   `json:"writes"`
	Affected    []TenantScore         `json:"affected,omitempty"`
	Collateral  []Harmed              `json:"collateral,omitempty"`
	Unresolved  []truth.Mismatch      `json:"unresolved,omitempty"`
	Integrity   []Check               `json:"integrity,omitempty"`
	Measures    objective.Measures    `json:"measures"`
	Results     []objective.Result    `json:"results"`

	Verdict reports.Verdict `json:"verdict"`
	// Reason says why, in plain words.
	Reason string `json:"reason"`
	// Problems lists what went wrong, for the "what went wrong" part of reports.
	Problems []string `json:"problems,omitempty"`
}
