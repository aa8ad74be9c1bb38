package drill

import (
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/scenarios"
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

// BlastRadius compares a rollout's damage with the damage the same script would have done
// without rings.
type BlastRadius struct {
	TargetedTenants int   `json:"targeted_tenants"`
	TargetedRows    int64 `json:"targeted_rows"`
	HarmedTenants   int   `json:"harmed_tenants"`
	HarmedRows      int64 `json:"harmed_rows"`
}

// Outcome is everything a drill found, the facts every report is rendered from.
type Outcome struct {
	// Scenario is the scenario as drilled: the file's, with the protection an overriding
	// strategy needed (Notes).
	Scenario *scenarios.Scenario `json:"-"`
	// InvalidInput says the drill stopped because its input could not be drilled (a schema
	// Postgres refused, a constraint the generator cannot keep): its verdict is ERROR, and the
	// command's exit code says invalid input.
	InvalidInput bool            `json:"-"`
	RunID        string          `json:"run_id"`
	ScenarioID   string          `json:"scenario_id"`
	Strategy     string          `json:"strategy"`
	Seed         uint64          `json:"seed"`
	Provider     string          `json:"provider"`
	Layout       fixtures.Layout `json:"layout"`
	Shards       int             `json:"shards"`
	Tenants      int             `json:"tenants"`
	Rows         int64           `json:"rows"`
	// SchemaName names the schema the tenants' tables have (fixtures.Model.Name), once planned.
	SchemaName string    `json:"schema_name,omitempty"`
	Started    time.Time `json:"started"`
	Finished   time.Time `json:"finished"`

	Events   []Event          `json:"events"`
	Incident *incident.Record `json:"incident,omitempty"`
	// Rings and BlastRadius are set for rollouts: where the guards contained the damage, and
	// how much a rollout without rings would have harmed.
	Rings       []incident.RingResult `json:"rings,omitempty"`
	BlastRadius *BlastRadius          `json:"blast_radius,omitempty"`
	// Backups are the backup chain checks made before the restore.
	Backups []backup.ChainReport `json:"backups,omitempty"`
	// Faults are the chaos the scenario asked for and what became of each fault.
	Faults []FaultOutcome `json:"faults,omitempty"`
	// Restore is what the restore strategy reported of itself: shown as reported, never judged.
	Restore *restore.Result `json:"restore,omitempty"`
	// Work is how much each shard's restore had to do (ShardWork), what cost curves fit on.
	Work []ShardWork `json:"work,omitempty"`
	// Projection is the restore projected to the scenario's production size from cost curves
	// measured on this machine (Config.Curves): never a measured RTO.
	Projection *costmodel.Projection `json:"projection,omitempty"`
	Writes     int                   `json:"writes"`
	Affected   []score.Tenant        `json:"affected,omitempty"`
	Collateral []score.Harmed        `json:"collateral,omitempty"`
	Integrity  []score.Check         `json:"integrity,omitempty"`
	Schema     []truth.SchemaChange  `json:"schema,omitempty"`
	Measures   objective.Measures    `json:"measures"`
	Results    []objective.Result    `json:"results"`

	Verdict score.Verdict `json:"verdict"`
	// Reason says why, in plain words.
	Reason string `json:"reason"`
	// Notes say what the drill changed from the scenario it was given, and why.
	Notes []string `json:"notes,omitempty"`
	// Knowledge is what the restore was told of the incident: every harm (told) or a ticket (blind).
	Knowledge scenarios.Knowledge `json:"knowledge"`
	// Ticket is what a blind drill handed the restore instead of the incident.
	Ticket *incident.Ticket `json:"ticket,omitempty"`
	// Located is what a blind drill's restore found of the incident, against the truth; nil for
	// a drill told the incident.
	Located *Located `json:"located,omitempty"`
	// Problems lists what went wrong, for the "what went wrong" part of reports.
	Problems []string `json:"problems,omitempty"`
}
