package reports

import (
	"fmt"
	"time"

	"github.com/pgdrill/pgdrill/harness/costmodel"
)

// SchemaVersion is the version of the report model this pgdrill writes and reads. CI jobs and
// dashboards parse report.json, so a change of meaning gets a new version rather than
// silently changing what an old field says.
const SchemaVersion = "pgdrill.report/v1"

// Report is everything one drill found out, in one versioned model. The drill runner fills it;
// every renderer reads it and nothing else.
type Report struct {
	// SchemaVersion is SchemaVersion when written by this pgdrill; Read refuses any other.
	SchemaVersion string `json:"schema_version"`
	// RunID names the run; it is also the default name of the run's report directory.
	RunID    string   `json:"run_id"`
	Scenario Scenario `json:"scenario"`
	// Seed drove every random choice of the drill, so the run can be replayed exactly.
	Seed uint64 `json:"seed"`
	// Started and Finished bound the whole drill, provisioning included.
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	// Provider is where the cluster ran ("local", "container").
	Provider string  `json:"provider"`
	Cluster  Cluster `json:"cluster"`
	Dataset  Dataset `json:"dataset"`
	// Strategy is the restore strategy drilled ("pitr-sidecar", ..., or "runbook").
	Strategy string `json:"strategy"`
	// Verdict is the drill's outcome; Reason says it in plain words, for people.
	Verdict Verdict `json:"verdict"`
	Reason  string  `json:"reason"`
	// Incident is what the incident harmed; empty when the drill stopped before it.
	Incident Incident `json:"incident"`
	// Timeline holds every phase and event of the drill, ordered by start.
	Timeline []Span `json:"timeline"`
	// Measures are the figures the objectives were judged on.
	Measures   Measures          `json:"measures"`
	Objectives []ObjectiveResult `json:"objectives"`
	// Tenants is the completeness of every affected tenant, ordered by id.
	Tenants []TenantResult `json:"tenants"`
	// Collateral lists unaffected tenants whose data differs from what their own acknowledged
	// writes say they must hold; empty is what every drill wants.
	Collateral []Collateral `json:"collateral"`
	// Checks are the integrity checks run after the restore.
	Checks []Check `json:"checks"`
	// Schema lists every difference of the schema from before the incident, by name; empty is
	// what every drill wants.
	Schema []SchemaChange `json:"schema"`
	// Backups are the checks of every shard's backup chain, made before the restore.
	Backups []BackupChain `json:"backups"`
	// Faults are the chaos the scenario injected, and what became of each fault.
	Faults []Fault `json:"faults,omitempty"`
	// Problems say what went wrong, in the order it went wrong.
	Problems []Problem `json:"problems"`
	// Notes say what the drill changed from the scenario file, and why (a strategy chosen
	// instead of the file's, equipped with the protection it restores from).
	Notes []string `json:"notes,omitempty"`
	// Runbook is what a runbook restore printed; nil when none ran.
	Runbook *RunbookOutput `json:"runbook,omitempty"`
	// Projection is the restore projected to the scenario's production size from cost curves
	// measured on this machine: a forecast, never a measured RTO. Nil when none was asked for.
	Projection *costmodel.Projection `json:"projection,omitempty"`
	// NextActions say what the team should do about it, most important first.
	NextActions []string `json:"next_actions"`
	// Artifacts are files kept with the report (logs, dumps), relative to its directory.
	Artifacts []Artifact `json:"artifacts"`
}

// RunbookOutput is what a team's runbook printed, for whoever debugs it.
type RunbookOutput struct {
	// Tail is the end of its stdout and stderr, at most RunbookTailLines lines: what a reader of
	// the report sees first.
	Tail string `json:"tail"`
	// Log is everything it printed (as the restore kept it), written next to the report as
	// FileRunbookLog; report.json holds only the tail.
	Log string `json:"-"`
}

// RunbookTailLines bounds the runbook output a report holds.
const RunbookTailLines = 40

// Passed reports whether the drill passed, possibly with conditions: what CI gates on.
func (r *Report) Passed() bool { return r.Verdict.Passed() }

// Scenario says which drill ran and who answers for it, so a scorecard can be routed to the
// owning team without opening the scenario file.
type Scenario struct {
	ID    string `json:"id"`
	Title string `json:"title"`
	// Hypothesis is what the team expected to be true; the scorecard quotes it by the verdict.
	Hypothesis string   `json:"hypothesis"`
	Owner      string   `json:"owner,omitempty"`
	Tier       string   `json:"tier,omitempty"`
	Tags       []string `json:"tags,omitempty"`
}

// Cluster is the shape of the throwaway cluster, which bounds how far results generalise.
type Cluster struct {
	Shards int `json:"shards"`
	// Layout is how tenants are stored: "shared", "schema" or "database".
	Layout string `json:"layout"`
}

// Dataset is the size of the synthetic SaaS the drill restored into.
type Dataset struct {
	Tenants int   `json:"tenants"`
	Rows    int64 `json:"rows"`
	// Schema names the schema the tenants' tables have: "builtin" for pgdrill's own world, a
	// schema file's base name otherwise.
	Schema string `json:"schema,omitempty"`
}

// Incident is what the incident harmed, exactly, as the harness recorded it.
type Incident struct {
	// Kind names the incident ("wrong-id-deletion", ...).
	Kind string `json:"kind"`
	// Summary says what happened in one plain sentence; when empty, renderers describe the
	// built-in kinds themselves.
	Summary string `json:"summary,omitempty"`
	// At is when the first harm committed: where RTO starts. AtMS is the same instant as an
	// offset from the drill's start.
	At   time.Time `json:"at"`
	AtMS int64     `json:"at_ms"`
	// Affected are the harmed tenants, ordered by id.
	Affected []TenantRef `json:"affected"`
	// HarmedRows counts the rows the incident changed or removed.
	HarmedRows int64 `json:"harmed_rows"`
	// Harms are the harmful transactions, by shard and WAL order.
	Harms []Harm `json:"harms"`
	// Knowledge is what the restore was told: "told" (every harm and victim) or "blind" (what
	// tickets say: a few victims and about when).
	Knowledge string `json:"knowledge,omitempty"`
	// Located is what a blind drill's restore found from the ticket, against the truth; nil when
	// it was told, or its search was a runbook's own.
	Located *Located `json:"located,omitempty"`
}

// Located is what a blind restore found of the incident from a ticket.
type Located struct {
	// Reported are the tenants the ticket named.
	Reported []int64 `json:"reported"`
	// Found are the victims it located; Missed the true victims it did not find (they stay
	// lost); Innocent the tenants it took for victims that were not.
	Found    []int64 `json:"found"`
	Missed   []int64 `json:"missed,omitempty"`
	Innocent []int64 `json:"innocent,omitempty"`
	// TargetsExact says every harmed shard's recovery target was the true one.
	TargetsExact bool `json:"targets_exact"`
	// TookMS is how long locating took, a phase of the restore.
	TookMS int64 `json:"took_ms"`
	// AfterMS is, for a game day's team, how long after the harm their search ended.
	AfterMS int64 `json:"after_ms,omitempty"`
	// Off says, per harmed shard whose target was not the true one, how far off it was.
	Off []TargetOff `json:"off,omitempty"`
}

// TargetOff is how far a located recovery target was from the true one on one shard: WAL bytes
// and milliseconds from the true harm's start to the located one's (positive: too late, negative:
// too early); Missing when no harm was found there.
type TargetOff struct {
	Shard    int   `json:"shard"`
	WALBytes int64 `json:"wal_bytes"`
	MS       int64 `json:"ms"`
	Missing  bool  `json:"missing,omitempty"`
}

// KnowledgeLine says in one line what the restore was told and, when blind, what it found.
func (i Incident) KnowledgeLine() string {
	l := i.Located
	switch {
	case i.Knowledge == "":
		return ""
	case l == nil && i.Knowledge == "blind":
		return "blind: handed a ticket, not the harm"
	case l == nil:
		return i.Knowledge + ": handed every harm and victim"
	}
	s := fmt.Sprintf("%s: from a ticket naming %s, located %d of %d victims in %s", i.Knowledge,
		Count(int64(len(l.Reported)), "tenant"), len(l.Found)-len(l.Innocent), len(i.Affected),
		Words(time.Duration(l.TookMS)*time.Millisecond))
	if len(l.Missed) > 0 {
		s += fmt.Sprintf("; missed %d", len(l.Missed))
	}
	if len(l.Innocent) > 0 {
		s += fmt.Sprintf("; took %d innocent for victims", len(l.Innocent))
	}
	if l.AfterMS > 0 {
		s += ", " + Words(time.Duration(l.AfterMS)*time.Millisecond) + " after the harm"
	}
	if l.TargetsExact {
		return s + "; every recovery target exact"
	}
	s += "; recovery target off"
	for _, o := range l.Off {
		if o.Missing {
			s += fmt.Sprintf(", shard %d: none found", o.Shard)
			continue
		}
		bytes, ms, way := o.WALBytes, o.MS, "late"
		if bytes < 0 {
			bytes, ms, way = -bytes, -ms, "early"
		}
		s += fmt.Sprintf(", shard %d: %s of WAL (%s) %s", o.Shard, Count(bytes, "byte"), Words(time.Duration(ms)*time.Millisecond), way)
	}
	return s
}

// Shards returns how many distinct shards the affected tenants live on.
func (i Incident) Shards() int {
	seen := map[int]bool{}
	for _, t := range i.Affected {
		seen[t.Shard] = true
	}
	return len(seen)
}

// TenantRef names a tenant and the shard it lives on.
type TenantRef struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
}

// Harm is one harmful transaction on one shard: what a restore aims just before.
type Harm struct {
	Shard   int     `json:"shard"`
	Tenants []int64 `json:"tenants"`
	XID     string  `json:"xid"`
	LSN     string  `json:"lsn"`
	// Time is when the harm committed; OffsetMS is the same instant on the drill's timeline.
	Time     time.Time `json:"time"`
	OffsetMS int64     `json:"offset_ms"`
	Rows     int64     `json:"rows"`
}

// SpanKind tells phases (which last) from events (instants).
type SpanKind string

// The span kinds.
const (
	// KindPhase is a step that takes time, e.g. replay on shard 2.
	KindPhase SpanKind = "phase"
	// KindEvent is an instant, e.g. the incident or its detection.
	KindEvent SpanKind = "event"
	// KindFault is a fault's band, from its injection to its heal, e.g. a network cut.
	KindFault SpanKind = "fault"
)

// Span is one phase or event of the drill's timeline. Offsets are from the drill's start on a
// monotonic clock, so durations are exact; wall times are there for people and logs.
type Span struct {
	Name string   `json:"name"`
	Kind SpanKind `json:"kind"`
	// Shard is the shard the span ran on, or -1 for the whole cluster.
	Shard   int       `json:"shard"`
	StartMS int64     `json:"start_ms"`
	EndMS   int64     `json:"end_ms"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	// Error says why the phase failed; empty when it succeeded.
	Error string `json:"error,omitempty"`
}

// Fault is one fault of the drill: what it broke, when, and whether the harness saw it take
// effect and heal. A fault not seen to take effect left the drill INCONCLUSIVE.
type Fault struct {
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// At is when the scenario asked it to strike ("restore.merge + 2s").
	At string `json:"at"`
	// Description says what it did to what ("kill -9 sidecar-shard-1-1").
	Description string `json:"description"`
	// InjectedMS and HealedMS are offsets from the drill's start; 0 when it did not happen.
	InjectedMS int64 `json:"injected_ms"`
	HealedMS   int64 `json:"healed_ms"`
	Confirmed  bool  `json:"confirmed"`
	Healed     bool  `json:"healed"`
	// Problem says what went wrong with it; empty when nothing did.
	Problem string `json:"problem,omitempty"`
}

// Duration is how long the span lasted (0 for an event).
func (s Span) Duration() time.Duration { return time.Duration(s.EndMS-s.StartMS) * time.Millisecond }

// Measures are the drill's figures. A nil duration was not measured, which is never a pass.
type Measures struct {
	// RTOMS is incident to restore verified, in milliseconds.
	RTOMS *int64 `json:"rto_ms,omitempty"`
	// RPOMS is the data loss in time, measured from the ledger, in milliseconds.
	RPOMS *int64 `json:"rpo_ms,omitempty"`
	// DetectMS is incident to detection, in milliseconds; part of RTO.
	DetectMS *int64 `json:"detect_ms,omitempty"`
	// Phases are the restore phases' durations summed over shards, in the order they ran.
	Phases []PhaseDuration `json:"phases,omitempty"`
	// RowsExpected counts the affected tenants' rows that should be back; RowsRestored the
	// ones that came back exactly.
	RowsExpected int64 `json:"rows_expected"`
	RowsRestored int64 `json:"rows_restored"`
}

// PhaseDuration is the wall time one phase took across the shards it ran on: from its
// earliest start to its latest end, since shards run in parallel.
type PhaseDuration struct {
	Name string `json:"name"`
	MS   int64  `json:"ms"`
}

// Completeness is the share of expected rows restored, in percent; 100 when nothing was
// expected (nothing to bring back is nothing missing).
func (m Measures) Completeness() float64 {
	if m.RowsExpected == 0 {
		return 100
	}
	return 100 * float64(m.RowsRestored) / float64(m.RowsExpected)
}

// Unit is what a Quantity is measured in; the names are those of pgdrill's objectives.
type Unit string

// The units.
const (
	// UnitDuration values are seconds.
	UnitDuration Unit = "duration"
	// UnitPercent values are 0..100.
	UnitPercent Unit = "percent"
	// UnitRows values are row counts.
	UnitRows Unit = "rows"
	// UnitStatus values are 1 (ok) or 0 (not ok).
	UnitStatus Unit = "status"
)

// Quantity is a measured value or a threshold in its unit: one comparable number for trend
// charts, and a String for people.
type Quantity struct {
	Unit  Unit    `json:"unit"`
	Value float64 `json:"value"`
}

// ObjectiveResult is the judgement on one objective.
type ObjectiveResult struct {
	// Expression is the objective as written canonically, e.g. "rto<=15m".
	Expression string `json:"expression"`
	// Metric is the metric it constrains, e.g. "rto".
	Metric string `json:"metric"`
	// Passed is true only when the metric was measured and met the threshold.
	Passed bool `json:"passed"`
	// Inconclusive is true when the metric could not be measured: neither pass nor fail.
	Inconclusive bool `json:"inconclusive,omitempty"`
	// Measured is nil when the metric was not measured.
	Measured  *Quantity `json:"measured,omitempty"`
	Threshold Quantity  `json:"threshold"`
	// Reason says in plain words why it passed, failed or could not be judged.
	Reason string `json:"reason"`
}

// TenantResult is how completely one affected tenant came back. Every count is of rows.
type TenantResult struct {
	ID    int64 `json:"id"`
	Shard int   `json:"shard"`
	// Expected rows should be back after the restore; Restored came back exactly.
	Expected int64 `json:"expected"`
	Restored int64 `json:"restored"`
	// Lost rows are missing; Wrong are back with other content; Duplicated are second copies;
	// Resurrected were deleted before the incident yet are back; Unexpected are unknown rows.
	Lost        int64 `json:"lost"`
	Wrong       int64 `json:"wrong"`
	Duplicated  int64 `json:"duplicated"`
	Resurrected int64 `json:"resurrected"`
	Unexpected  int64 `json:"unexpected"`
	// Complete is true when every expected row came back exactly and nothing else did.
	Complete bool `json:"complete"`
}

// Collateral is one unaffected tenant's table that differs from what its acknowledged writes
// say: harm the restore did to a bystander.
type Collateral struct {
	Tenant int64  `json:"tenant"`
	Shard  int    `json:"shard"`
	Table  string `json:"table"`
	// Rows counts the differing rows; Differs says how, e.g. "3 rows missing, 1 changed".
	Rows    int64  `json:"rows"`
	Differs string `json:"differs"`
}

// Check is one integrity check after the restore: foreign keys, uniqueness, placement.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	// Inconclusive is true when the check could not run (the drill stopped before it).
	Inconclusive bool   `json:"inconclusive,omitempty"`
	Detail       string `json:"detail"`
}

// SchemaChange is one difference of a database's schema from before the incident: an index gone,
// a column retyped, a function planted.
type SchemaChange struct {
	// Place is where: "shard 2", "shard 2, database t_1017", "catalog".
	Place string `json:"place"`
	// Kind and Name are the object: "index" "issues_tenant_id_project_id_idx".
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Change is "gone", "new", "changed" or "behind" (a sequence behind its rows).
	Change string `json:"change"`
	// Detail says it in words.
	Detail string `json:"detail"`
}

// BackupChain is the check of one shard's backup chain: its base backup, and the WAL archive from
// the backup's start through the incident.
type BackupChain struct {
	Shard  string `json:"shard"`
	Backup string `json:"backup"`
	// First and Last are the WAL segments the chain must hold, inclusive.
	First string `json:"first_segment"`
	Last  string `json:"last_segment"`
	// Verified is true when the backup verified and no segment is missing.
	Verified bool `json:"verified"`
	// Problem says what is broken, naming the file or segment; empty when verified.
	Problem string `json:"problem,omitempty"`
}

// Problem is one thing that went wrong, with the phase it went wrong in when known.
type Problem struct {
	Phase   string `json:"phase,omitempty"`
	Message string `json:"message"`
}

// Artifact is a file kept with the report; Path is relative to the report's directory.
type Artifact struct {
	Name string `json:"name"`
	Path string `json:"path"`
}
