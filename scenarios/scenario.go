package scenarios

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/costmodel"
	"github.com/pgdrill/pgdrill/harness/objective"
)

// APIVersion is the version of the scenario format this pgdrill reads. A change that would make
// an old file mean something else gets a new version, so old files fail loudly instead.
const APIVersion = "pgdrill.dev/v1alpha1"

// KindScenario is the only kind of document in the format today; the field exists so that other
// kinds (a suite of scenarios, say) can share the format later.
const KindScenario = "Scenario"

// Scenario is one drill, as written in a scenario file, with the defaults applied. Field names
// are the YAML keys; JSON uses the same names, so `pgdrill scenarios show -o json` mirrors the
// file.
type Scenario struct {
	APIVersion string   `yaml:"apiVersion" json:"apiVersion"`
	Kind       string   `yaml:"kind" json:"kind"`
	Metadata   Metadata `yaml:"metadata" json:"metadata"`
	Spec       Spec     `yaml:"spec" json:"spec"`
	// File is where the scenario was read from: the path given to Load, or
	// "scenarios/NAME.yaml" for a built-in. Problems are reported against it.
	File string `yaml:"-" json:"file"`

	objectives objective.Objectives
}

// Objectives are the scenario's objectives, parsed: the spec's own, or its tier's preset when it
// writes none.
func (s *Scenario) Objectives() objective.Objectives { return s.objectives }

// HasFault reports whether the scenario injects a fault of kind k: what the cluster must be made
// ready for before it starts (a disk-full needs sidecars with disks of their own).
func (s *Scenario) HasFault(k FaultKind) bool {
	return slices.ContainsFunc(s.Spec.Faults, func(f Fault) bool { return f.Kind == k })
}

// NeedsOwnServers lists what in the scenario only servers pgdrill started can undergo: a lost
// shard, a server killed, paused or restarted, pgBackRest (which archives through the server's
// own archive_command and reads its data directory). On servers pgdrill did not start (provider
// existing), which it never stops or destroys, the drill is refused for these reasons.
func (s *Scenario) NeedsOwnServers() []string {
	var why []string
	if s.Spec.Incident.Kind == ShardLoss {
		why = append(why, "spec.incident.kind: shard-loss destroys a shard's server and its data")
	}
	if s.Spec.Restore.Strategy == FullShardPITR {
		why = append(why, "spec.restore.strategy: full-shard-pitr replaces a shard's data with a recovered copy")
	}
	if s.Spec.Protection.PgBackRest {
		why = append(why, "spec.protection.pgbackrest: pgBackRest archives through a server's own archive_command and reads its data directory, which only its owner can give")
	}
	for i, f := range s.Spec.Faults {
		kind, _, err := ParseTarget(f.TargetOrDefault())
		process := f.Kind == FaultKill || f.Kind == FaultPause || f.Kind == FaultRestart
		if err == nil && process && (kind == "catalog" || kind == "shard") {
			why = append(why, fmt.Sprintf("spec.faults[%d]: %s of %s stops a server's process", i, f.Kind, f.TargetOrDefault()))
		}
	}
	return why
}

// Metadata says what a scenario is and who answers for it, for listings and scorecards.
type Metadata struct {
	// ID names the scenario on the command line (`pgdrill run wrong-id-deletion`): lower-case
	// letters, digits and dashes. Required.
	ID string `yaml:"id" json:"id"`
	// Title is the one-line headline of the scorecard. Required.
	Title string `yaml:"title" json:"title"`
	// Owner is the team that answers for the restore path the scenario drills.
	Owner string `yaml:"owner,omitempty" json:"owner,omitempty"`
	// Tags group scenarios in listings and trend pages.
	Tags []string `yaml:"tags,omitempty" json:"tags,omitempty"`
	// Tier picks the objectives when spec.objectives is absent. Default: standard.
	Tier objective.Tier `yaml:"tier" json:"tier"`
}

// Spec is what the drill does, phase by phase.
type Spec struct {
	// Hypothesis is what the team expects to be true, in words (e.g. "we can bring back the
	// deleted tenants within 15 minutes without harming anyone else"); the scorecard quotes it
	// next to the verdict. Required.
	Hypothesis string `yaml:"hypothesis" json:"hypothesis"`
	// Seed drives every random choice of the drill, so a run can be replayed. Default: 1.
	Seed       uint64     `yaml:"seed" json:"seed"`
	Cluster    Cluster    `yaml:"cluster" json:"cluster"`
	Dataset    Dataset    `yaml:"dataset" json:"dataset"`
	Workload   Workload   `yaml:"workload" json:"workload"`
	Protection Protection `yaml:"protection" json:"protection"`
	// Incident is required: a drill without one restores nothing.
	Incident  Incident  `yaml:"incident" json:"incident"`
	Detection Detection `yaml:"detection" json:"detection"`
	Restore   Restore   `yaml:"restore" json:"restore"`
	// Faults are chaos injected on top of the incident, each at one phase. Default: none.
	Faults []Fault `yaml:"faults,omitempty" json:"faults,omitempty"`
	// Objectives are written like rto<=15m (see package objective). Default: the tier's preset.
	Objectives []string `yaml:"objectives" json:"objectives"`
	// Projection names a production size to project this drill's restore to from curves this
	// machine measured (pgdrill measure): optional, and always shown as a projection, never as
	// a measured RTO.
	Projection *Projection `yaml:"projection,omitempty" json:"projection,omitempty"`
}

// Cluster is the throwaway cluster the drill runs on.
type Cluster struct {
	// Shards is the number of shard servers. Default: 4.
	Shards int `yaml:"shards" json:"shards"`
	// Layout is how tenants are stored. Default: shared.
	Layout fixtures.Layout `yaml:"layout" json:"layout"`
	// Provider is where the servers run. Default: local.
	Provider Provider `yaml:"provider" json:"provider"`
	// Durable keeps fsync and full-page writes on, for scenarios whose subject is a crash.
	// Default: false (throwaway settings that load data fast).
	Durable bool `yaml:"durable" json:"durable"`
}

// Provider names where a cluster's servers run.
type Provider string

// The providers.
const (
	// ProviderLocal runs the host's Postgres binaries as local processes; needs no Docker.
	ProviderLocal Provider = "local"
	// ProviderContainer runs each server in a container.
	ProviderContainer Provider = "container"
	// ProviderExisting drills servers the user already runs, named by connection URLs
	// (pgdrill --catalog-url, --shard-url): pgdrill works in databases of its own on them.
	ProviderExisting Provider = "existing"
)

// Providers lists the providers, default first.
func Providers() []Provider { return []Provider{ProviderLocal, ProviderContainer, ProviderExisting} }

// Dataset is the synthetic SaaS the cluster is filled with.
type Dataset struct {
	// Tenants is the number of tenants. Default: 200.
	Tenants int `yaml:"tenants" json:"tenants"`
	// Rows is the total number of rows over all tenants. Default: 1,000,000.
	Rows int64 `yaml:"rows" json:"rows"`
	// Distribution shapes tenant sizes. Default: skewed.
	Distribution Distribution `yaml:"distribution" json:"distribution"`
	// Schema is the DDL file of the tenants' tables, relative to the scenario file (what
	// pg_dump --schema-only --no-owner --no-privileges prints loads). Default: pgdrill's
	// built-in Jira-like world.
	Schema string `yaml:"schema,omitempty" json:"schema,omitempty"`
	// TenantKey is the column that holds the tenant in most tables. Default: tenant_id.
	TenantKey string `yaml:"tenantKey,omitempty" json:"tenant_key,omitempty"`
	// TenantKeys maps a table to its own tenant column where it differs from TenantKey (the
	// tenants table keyed by its own id, say). Default: none.
	TenantKeys map[string]string `yaml:"tenantKeys,omitempty" json:"tenant_keys,omitempty"`
	// Columns are value rules for columns the synthetic generator's heuristics cannot guess, by
	// "table.column". Default: none.
	Columns map[string]fixtures.ColumnOverride `yaml:"columns,omitempty" json:"columns,omitempty"`
}

// SchemaPath returns the path of the scenario's schema file as the process can open it
// (relative to the scenario file's directory), or "" for the built-in world.
func (d Dataset) SchemaPath(scenarioFile string) string {
	if d.Schema == "" || filepath.IsAbs(d.Schema) {
		return d.Schema
	}
	return filepath.Join(filepath.Dir(scenarioFile), d.Schema)
}

// ReadOptions returns how to read the schema's tenancy model, named after its file.
func (d Dataset) ReadOptions() fixtures.ReadOptions {
	name := fixtures.BuiltinName
	if d.Schema != "" {
		name = fixtures.ModelName(d.Schema)
	}
	return fixtures.ReadOptions{Name: name, TenantKey: d.TenantKey, TenantKeys: d.TenantKeys}
}

// Distribution is how rows are spread over tenants.
type Distribution string

// The distributions.
const (
	// Skewed follows a Zipf law: a few whales and a long tail, as in a real SaaS.
	Skewed Distribution = "skewed"
	// Uniform gives every tenant about the same number of rows, to isolate per-tenant costs.
	Uniform Distribution = "uniform"
)

// Distributions lists the distributions, default first.
func Distributions() []Distribution { return []Distribution{Skewed, Uniform} }

// Workload is the background writing that goes on during the incident and the restore, with a
// ledger of acknowledged writes: it is what makes collateral and RPO measurable.
type Workload struct {
	// Writers is the number of concurrent writer connections; 0 turns the workload off.
	// Default: 4.
	Writers int `yaml:"writers" json:"writers"`
	// Rate is the total number of writes per second over all writers. Default: 200.
	Rate int `yaml:"rate" json:"rate"`
	// Mix is the share of each operation, in percent. Default: 60/30/10.
	Mix Mix `yaml:"mix" json:"mix"`
}

// Mix splits the workload's writes by operation; the shares add up to 100.
type Mix struct {
	Insert int `yaml:"insert" json:"insert"`
	Update int `yaml:"update" json:"update"`
	Delete int `yaml:"delete" json:"delete"`
}

// Protection is what the team has in place before the incident; each restore strategy needs
// some of it.
type Protection struct {
	// BaseBackup takes a base backup of every shard before the workload. Default: true.
	BaseBackup bool `yaml:"baseBackup" json:"baseBackup"`
	// WALArchive archives every shard's WAL, for point-in-time recovery. Default: true.
	WALArchive bool `yaml:"walArchive" json:"walArchive"`
	// LogicalExportInterval is how often every tenant is exported logically; 0s: never.
	// Default: 0s.
	LogicalExportInterval Duration `yaml:"logicalExportInterval" json:"logicalExportInterval"`
	// PgBackRest backs shards up with pgBackRest as well (one stanza per shard). Default: false.
	PgBackRest bool `yaml:"pgbackrest" json:"pgbackrest"`
	// StandbyApplyDelay runs a delayed streaming standby per shard that applies WAL this long
	// after it was written; 0s: no standby. Default: 0s.
	StandbyApplyDelay Duration `yaml:"standbyApplyDelay" json:"standbyApplyDelay"`
}

// Detection is how the incident is noticed; its time is part of RTO. It is written with its
// probe or else its delay (see MarshalYAML).
type Detection struct {
	// Delay detects the incident this long after it happened. Default: 10s, unless Probe is set.
	Delay Duration `yaml:"delay" json:"delay"`
	// Probe detects the incident by checking the steady state repeatedly instead.
	Probe *Probe `yaml:"probe" json:"probe"`
	// Knowledge is what the restore is told of the incident: KnowledgeTold (the harmful
	// transactions and every victim) or KnowledgeBlind (what tickets would say: a few of the
	// victims and about when; the harm must be located). Default: told.
	Knowledge Knowledge `yaml:"knowledge,omitempty" json:"knowledge,omitempty"`
}

// Knowledge is what a restore is told of the incident.
type Knowledge string

// The knowledge levels.
const (
	// KnowledgeTold hands the restore each harmful transaction and the full list of victims.
	KnowledgeTold Knowledge = "told"
	// KnowledgeBlind hands it only what a responder would have: a few of the victims, reported,
	// and a time window; the restore locates the harm itself (package locate), and that takes
	// its time in the RTO.
	KnowledgeBlind Knowledge = "blind"
)

// Knowledges lists the knowledge levels.
func Knowledges() []Knowledge { return []Knowledge{KnowledgeTold, KnowledgeBlind} }

// WithKnowledge returns a copy of sc whose restore is told k of the incident (`pgdrill run
// --knowledge`): the same drill, told or blind, to compare the two. It refuses a level that is not
// one, and told for a scenario whose objectives measure what a blind restore found.
func WithKnowledge(sc *Scenario, k Knowledge) (*Scenario, error) {
	if msg := oneOf(k, Knowledges()); msg != "" {
		return nil, fmt.Errorf("knowledge for scenario %s: %s", sc.Metadata.ID, msg)
	}
	if k != KnowledgeBlind {
		for _, o := range sc.objectives {
			if o.Metric == objective.Located || o.Metric == objective.Target {
				return nil, fmt.Errorf("knowledge %s for scenario %s: its objective %s measures what a blind restore found", k, sc.Metadata.ID, o)
			}
		}
	}
	out := *sc
	out.Spec.Detection.Knowledge = k
	return &out, nil
}

// detector returns the key and value of what detects the incident: the probe, or else the delay.
func (det Detection) detector() (string, any) {
	if det.Probe != nil {
		return "probe", det.Probe
	}
	return "delay", det.Delay
}

// MarshalYAML writes the probe or else the delay, never both, which would not read back. A
// delay of 0s (detected at once) is written too: dropped, it would read back as the default.
func (det Detection) MarshalYAML() (any, error) {
	key, v := det.detector()
	out := yaml.MapSlice{{Key: key, Value: v}}
	if det.Knowledge != "" {
		out = append(out, yaml.MapItem{Key: "knowledge", Value: det.Knowledge})
	}
	return out, nil
}

// MarshalJSON writes what MarshalYAML writes.
func (det Detection) MarshalJSON() ([]byte, error) {
	key, v := det.detector()
	m := map[string]any{key: v}
	if det.Knowledge != "" {
		m["knowledge"] = det.Knowledge
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal detection: %w", err)
	}
	return b, nil
}

// Probe is a steady-state check run until it notices the harm.
type Probe struct {
	// Interval is the time between checks. Default: 5s.
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout gives up (the drill is INCONCLUSIVE) when nothing was noticed. Default: 10m.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Restore is how the harmed tenants are brought back.
type Restore struct {
	// Strategy is a built-in strategy, or runbook for the team's own command.
	// Default: pitr-sidecar.
	Strategy Strategy `yaml:"strategy" json:"strategy"`
	// Runbook is the command run by the runbook strategy; only with it.
	Runbook *Runbook `yaml:"runbook,omitempty" json:"runbook,omitempty"`
}

// Strategy names a restore strategy (see DESIGN.md, Restore strategies).
type Strategy string

// The strategies.
const (
	// PITRSidecar recovers a sidecar from base backup + WAL to just before the harm, and copies
	// the affected tenants back.
	PITRSidecar Strategy = "pitr-sidecar"
	// DelayedStandby extracts the tenants from a standby stopped short of the harm.
	DelayedStandby Strategy = "delayed-standby"
	// LogicalExport loads the tenants' latest logical export; its RPO is the export's age.
	LogicalExport Strategy = "logical-export"
	// FullShardPITR rolls whole shards back, with collateral on other tenants' later writes.
	FullShardPITR Strategy = "full-shard-pitr"
	// SoftDeleteUndo clears deletion marks, where the harm only marked rows deleted.
	SoftDeleteUndo Strategy = "soft-delete-undo"
	// PgBackRestSidecar is PITRSidecar with pgBackRest restoring the sidecar.
	PgBackRestSidecar Strategy = "pgbackrest-sidecar"
	// RunbookStrategy runs the team's own command (Restore.Runbook).
	RunbookStrategy Strategy = "runbook"
)

// Runbook is an external restore command: the team's own procedure, drilled like a built-in.
type Runbook struct {
	// Command is run with `sh -c`, with the incident's facts in its environment. Required.
	Command string `yaml:"command" json:"command"`
	// Timeout stops the command (and fails the restore) when it runs longer. Default: 30m.
	Timeout Duration `yaml:"timeout" json:"timeout"`
}

// Fault is chaos injected into a drill: what breaks (Kind), in what (Target), when (At or During)
// and for how long (For). Every fault is healed before the final verification, whatever For says,
// and one that was not seen to take effect makes the drill INCONCLUSIVE.
type Fault struct {
	// Kind is what breaks. Required.
	Kind FaultKind `yaml:"kind" json:"kind"`
	// Target is what it breaks: catalog; shard (the first shard the incident harmed, or shard-0
	// before the incident); shard-N; sidecar (the sidecar of the restore phase the fault is
	// attached to); standby-N; runbook (the restorer itself). Default: runbook for
	// restorer-crash, shard for every other kind.
	Target string `yaml:"target,omitempty" json:"target,omitempty"`
	// At injects the fault when a phase of the drill begins, or a while after it: "incident",
	// "restore.replay", "restore.merge + 2s". One of At and During is required.
	At string `yaml:"at,omitempty" json:"at,omitempty"`
	// During injects the fault when a phase begins and heals it when the phase ends.
	During string `yaml:"during,omitempty" json:"during,omitempty"`
	// For heals the fault this long after it struck. Default: with At, just before the final
	// verification (a restorer-crash: at once, the runbook runs again); with During, at the
	// phase's end.
	For Duration `yaml:"for,omitempty" json:"for,omitempty"`
	// Latency and Jitter are a latency fault's delay of every packet, each way. Default: 100ms,
	// 0s.
	Latency Duration `yaml:"latency,omitempty" json:"latency,omitempty"`
	Jitter  Duration `yaml:"jitter,omitempty" json:"jitter,omitempty"`
	// Rate is a bandwidth fault's limit, in KB/s. Default: 100.
	Rate int64 `yaml:"rate,omitempty" json:"rate,omitempty"`
	// After is how long a reset fault lets a connection carry data before resetting it.
	// Default: 0s.
	After Duration `yaml:"after,omitempty" json:"after,omitempty"`
	// Immediate makes a restart a crash and a start (kill -9), rather than a clean shutdown and
	// a start. Default: false.
	Immediate bool `yaml:"immediate,omitempty" json:"immediate,omitempty"`
	// Segment names the WAL segment a wal-missing or wal-corrupt fault breaks. Default: the
	// first segment archived after the base backup's end, the first a replay from it needs.
	Segment string `yaml:"segment,omitempty" json:"segment,omitempty"`
	// File names the file, relative to the base backup, a backup-corrupt or backup-truncate
	// fault breaks. Default: the backup's largest relation file.
	File string `yaml:"file,omitempty" json:"file,omitempty"`
	// Tenants is how many tenants a restorer-crash lets the runbook restore (as its `pgdrill
	// restore` journals them) before it crashes it: "mid-merge". Default: 0, at once.
	Tenants int `yaml:"tenants,omitempty" json:"tenants,omitempty"`
}

// FaultKind names a fault.
type FaultKind string

// The faults (DESIGN.md, Chaos), by what they break.
const (
	// Process faults.
	FaultKill    FaultKind = "kill"    // kill -9; healed by a start (a sidecar: by its restore)
	FaultPause   FaultKind = "pause"   // SIGSTOP; healed by SIGCONT
	FaultRestart FaultKind = "restart" // a clean restart, or a crash and start (immediate)
	// Network faults, through a TCP fault proxy in front of the target.
	FaultLatency   FaultKind = "latency"   // latency (with jitter) each way
	FaultBandwidth FaultKind = "bandwidth" // a bandwidth limit
	FaultReset     FaultKind = "reset"     // connections reset (RST)
	FaultCut       FaultKind = "cut"       // every connection closed, new ones refused
	FaultStall     FaultKind = "stall"     // half-open: connections stay up, nothing arrives
	// Storage faults, on the target shard's archive and base backup.
	FaultWALMissing     FaultKind = "wal-missing"
	FaultWALCorrupt     FaultKind = "wal-corrupt"
	FaultBackupCorrupt  FaultKind = "backup-corrupt"
	FaultBackupTruncate FaultKind = "backup-truncate"
	FaultDiskFull       FaultKind = "disk-full" // a sidecar's data directory on a filesystem of its own, filled
	// The restorer itself: the runbook killed partway and run again.
	FaultRestorerCrash FaultKind = "restorer-crash"
)

// FaultKinds lists the faults.
func FaultKinds() []FaultKind {
	return []FaultKind{FaultKill, FaultPause, FaultRestart, FaultLatency, FaultBandwidth, FaultReset, FaultCut, FaultStall,
		FaultWALMissing, FaultWALCorrupt, FaultBackupCorrupt, FaultBackupTruncate, FaultDiskFull, FaultRestorerCrash}
}

// Network reports whether the fault is a network fault, injected through a proxy.
func (k FaultKind) Network() bool {
	switch k {
	case FaultLatency, FaultBandwidth, FaultReset, FaultCut, FaultStall:
		return true
	}
	return false
}

// Storage reports whether the fault breaks a file of a backup or an archive.
func (k FaultKind) Storage() bool {
	switch k {
	case FaultWALMissing, FaultWALCorrupt, FaultBackupCorrupt, FaultBackupTruncate:
		return true
	}
	return false
}

// The drill's phases a fault can be attached to, in timeline order: the drill's own steps
// before the verification (the Jepsen rule: every fault is healed before it) and the restore's
// phases, named restore.PHASE. Provisioning is not one: there is nothing to break yet.
const (
	PhaseFill     = "fill"
	PhaseProtect  = "protect"
	PhaseBaseline = "baseline"
	PhaseWorkload = "workload"
	PhaseIncident = "incident"
	PhaseDetect   = "detect"
	PhaseBackups  = "backups"
	PhaseRestore  = "restore"
)

// FaultPhases lists the phases faults can be attached to, in timeline order.
func FaultPhases() []string {
	return []string{PhaseFill, PhaseProtect, PhaseBaseline, PhaseWorkload, PhaseIncident, PhaseDetect, PhaseBackups, PhaseRestore,
		"restore.archive", "restore.provision", "restore.replay", "restore.merge", "restore.undo", "restore.pause",
		"restore.swap", "restore.runbook"}
}

// Duration is a time.Duration written as text ("30s", "15m"; a bare 0 is 0s) in YAML and JSON.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String writes d like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText writes d as text, so YAML and JSON show "30s" instead of nanoseconds.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads what MarshalText writes, so that a scenario's parts travel as JSON (a
// game day's `pgdrill fault inject` sends a Fault to its owner).
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("read duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// names turns enum values into strings for messages.
func names[T ~string](vs []T) []string {
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = string(v)
	}
	return out
}

// oneOf says what is wrong with v when it is not one of choices, or "" when it is.
func oneOf[T ~string](v T, choices []T) string {
	for _, c := range choices {
		if v == c {
			return ""
		}
	}
	all := names(choices)
	return fmt.Sprintf("%q is not one of %s%s", v, strings.Join(all, ", "), objective.DidYouMean(string(v), all))
}

// Projection is the production size a drill's restore is projected to (costmodel.Production).
type Projection struct {
	// DataGB is the fleet's data, all shards together. Required.
	DataGB float64 `yaml:"dataGB" json:"dataGB"`
	// WALGBPerHour is the WAL the fleet writes per hour, all shards together.
	WALGBPerHour float64 `yaml:"walGBPerHour" json:"walGBPerHour"`
	// BackupAge is the age of the newest base backup when the harm happens, at worst.
	BackupAge Duration `yaml:"backupAge" json:"backupAge"`
	// Tenants is how many tenants the incident harms; RowsPerTenant their average rows. Required.
	Tenants       int     `yaml:"tenants" json:"tenants"`
	RowsPerTenant float64 `yaml:"rowsPerTenant" json:"rowsPerTenant"`
	// Shards is the fleet's shard count. Required.
	Shards int `yaml:"shards" json:"shards"`
}

// Production is the projection's size as the cost model takes it.
func (p Projection) Production() costmodel.Production {
	return costmodel.Production{DataGB: p.DataGB, WALGBPerHour: p.WALGBPerHour, BackupAge: p.BackupAge.Std(),
		Tenants: p.Tenants, RowsPerTenant: p.RowsPerTenant, Shards: p.Shards}
}
