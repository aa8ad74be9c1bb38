package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/fixtures"
)

// StrategyInfo is everything pgdrill knows about a restore strategy besides how it runs: what
// protection it restores from, which layouts and incidents it can restore, and where it can
// run. It is the one source the scenario validator, `pgdrill run --strategy`, `pgdrill
// restore`, the help texts and the README's table read, so that they cannot disagree.
type StrategyInfo struct {
	Name Strategy `json:"name"`
	// Source says where the tenants come from, for the README's table and --help.
	Source string `json:"source"`
	// ChooseWhen says when a team should pick it.
	ChooseWhen string `json:"choose_when"`
	// Needs names the protection it restores from, in the scenario's own field names; "" when
	// it needs none.
	Needs string `json:"needs,omitempty"`
	// Layouts are the tenancy layouts it can restore.
	Layouts []fixtures.Layout `json:"layouts"`
	// Incidents are the incident kinds it can restore.
	Incidents []IncidentKind `json:"incidents"`
	// FromIncidentFile says it can work from an incident file alone (backups, WAL archives and
	// the live shards), so a runbook can call it through `pgdrill restore`; the others need
	// what only the drill that protected the cluster holds (standbys, exports).
	FromIncidentFile bool `json:"from_incident_file"`
	// GameDay says `pgdrill restore` can run it on a game day, in the game day's `pgdrill up`.
	GameDay bool `json:"game_day"`
	// protected reports whether p holds what the strategy restores from.
	protected func(p Protection) bool
	// equip turns on the protection the strategy restores from, with defaults, for a drill of
	// sc, and says what it turned on.
	equip func(sc *Spec) string
}

// tenantIncidents are the incidents that harm some tenants on shards that stay up: every kind a
// merge into the live shard can repair.
//
// wrong-id-soft-delete is not one: its rows are all still live, marked, and a merge keeps live
// rows; clearing the marks is what restores it.
var tenantIncidents = []IncidentKind{WrongIDDeletion, PurgeNotSoftDelete, UpdateWithoutWhere, BadMigration, RingRollout}

// backupProtected is the protection of the strategies that restore from base backups and WAL.
func backupProtected(p Protection) bool { return p.BaseBackup && p.WALArchive }

// equipBackups takes base backups and archives WAL.
func equipBackups(sp *Spec) string {
	sp.Protection.BaseBackup, sp.Protection.WALArchive = true, true
	return "spec.protection.baseBackup and walArchive turned on"
}

// DefaultExportInterval is the export interval `--strategy logical-export` equips a scenario
// without exports with: often enough that a default drill's incident finds one.
const DefaultExportInterval = 5 * time.Second

// standbyMargin is how much longer than the longest detection `--strategy delayed-standby` makes
// the apply delay, with a floor of DefaultStandbyApplyDelay.
const standbyMargin = 2

// DefaultStandbyApplyDelay is the shortest apply delay `--strategy delayed-standby` equips a
// scenario with: long enough for the restore to stop the standby short of the harm.
const DefaultStandbyApplyDelay = 5 * time.Minute

// strategyRegistry lists every strategy, the default first, in the order help texts list them.
var strategyRegistry = []StrategyInfo{
	{
		Name:       PITRSidecar,
		Source:     "a sidecar from the base backup + WAL archive, recovered to just before each harmful transaction",
		ChooseWhen: "the default: backups and an archive are all you have",
		Needs:      "spec.protection.baseBackup and walArchive", Incidents: tenantIncidents,
		FromIncidentFile: true, GameDay: true, protected: backupProtected, equip: equipBackups,
	},
	{
		Name:   DelayedStandby,
		Source: "a standby per shard held behind by an apply delay, stopped short of the harm",
		ChooseWhen: "you can afford a standby per shard and detect incidents within its delay: no backup copy, " +
			"replays only what it held back (0.15× the sidecar's time in `make bench`)",
		Needs: "spec.protection.standbyApplyDelay", Incidents: tenantIncidents, GameDay: true,
		protected: func(p Protection) bool { return p.StandbyApplyDelay > 0 },
		equip: func(sp *Spec) string {
			delay := max(DefaultStandbyApplyDelay, standbyMargin*sp.Detection.worstDetection().Std())
			sp.Protection.StandbyApplyDelay = Duration(delay)
			return "spec.protection.standbyApplyDelay set to " + delay.String()
		},
	},
	{
		Name:       PgBackRestSidecar,
		Source:     "as pitr-sidecar, restored by pgBackRest",
		ChooseWhen: "pgBackRest is your backup tool",
		Needs:      "spec.protection.pgbackrest: true", Incidents: tenantIncidents, FromIncidentFile: true, GameDay: true,
		protected: func(p Protection) bool { return p.PgBackRest },
		equip: func(sp *Spec) string {
			sp.Protection.PgBackRest = true
			return "spec.protection.pgbackrest turned on"
		},
	},
	{
		Name:       LogicalExport,
		Source:     "the tenants' latest per-tenant export",
		ChooseWhen: "exports are all you keep; RPO is the export's age",
		Needs:      "spec.protection.logicalExportInterval", Incidents: tenantIncidents, GameDay: true,
		protected: func(p Protection) bool { return p.LogicalExportInterval > 0 },
		equip: func(sp *Spec) string {
			sp.Protection.LogicalExportInterval = Duration(DefaultExportInterval)
			return "spec.protection.logicalExportInterval set to " + DefaultExportInterval.String()
		},
	},
	{
		Name:       SoftDeleteUndo,
		Source:     "the rows the incident marked deleted, unmarked in place",
		ChooseWhen: "the incident only marked rows deleted (wrong-id-soft-delete): no sidecar, seconds whatever the size",
		Incidents:  []IncidentKind{WrongIDSoftDelete}, FromIncidentFile: true, GameDay: true,
	},
	{
		Name:       FullShardPITR,
		Source:     "the whole shard rolled back",
		ChooseWhen: "a shard is lost; for tenant incidents it destroys other tenants' later writes, and the scorecard shows that collateral",
		Needs:      "spec.protection.baseBackup and walArchive",
		// Not purge-not-soft-delete: the shard comes back as it was, the purged tenants unmarked.
		Incidents: append(slices.DeleteFunc(slices.Clone(tenantIncidents), func(k IncidentKind) bool { return k == PurgeNotSoftDelete }), ShardLoss),
		GameDay:   true, protected: backupProtected, equip: equipBackups,
	},
	{
		Name:       RunbookStrategy,
		Source:     "your command (`spec.restore.runbook`, or `pgdrill run --runbook`)",
		ChooseWhen: "you want your own procedure drilled and scored",
		Incidents:  IncidentKinds(),
	},
}

func init() {
	for i := range strategyRegistry {
		if strategyRegistry[i].Layouts == nil {
			strategyRegistry[i].Layouts = fixtures.Layouts()
		}
	}
}

// Strategies lists the strategies, default first.
func Strategies() []Strategy {
	out := make([]Strategy, len(strategyRegistry))
	for i, s := range strategyRegistry {
		out[i] = s.Name
	}
	return out
}

// StrategyInfos returns the registry's entries, default first.
func StrategyInfos() []StrategyInfo { return slices.Clone(strategyRegistry) }

// LookupStrategy returns the registry's entry of a strategy.
func LookupStrategy(name string) (StrategyInfo, error) {
	for _, s := range strategyRegistry {
		if string(s.Name) == name {
			return s, nil
		}
	}
	return StrategyInfo{}, fmt.Errorf("look up restore strategy %q: %s", name, oneOf(Strategy(name), Strategies()))
}

// StrategiesWhere lists the names of the strategies for which keep holds, in registry order.
func StrategiesWhere(keep func(StrategyInfo) bool) []string {
	var out []string
	for _, s := range strategyRegistry {
		if keep(s) {
			out = append(out, string(s.Name))
		}
	}
	return out
}

// problems says why the strategy cannot restore the scenario's incident with the protection it
// takes, field by field; none when it can.
func (s StrategyInfo) problems(sp *Spec) []fieldProblem {
	var out []fieldProblem
	if s.protected != nil && !s.protected(sp.Protection) {
		out = append(out, fieldProblem{"spec.restore.strategy", fmt.Sprintf("%s needs %s", s.Name, s.Needs)})
	}
	if slices.Contains(fixtures.Layouts(), sp.Cluster.Layout) && !slices.Contains(s.Layouts, sp.Cluster.Layout) {
		out = append(out, fieldProblem{"spec.restore.strategy", fmt.Sprintf("%s cannot restore the %s layout", s.Name, sp.Cluster.Layout)})
	}
	if slices.Contains(IncidentKinds(), sp.Incident.Kind) && !slices.Contains(s.Incidents, sp.Incident.Kind) {
		out = append(out, fieldProblem{"spec.restore.strategy", fmt.Sprintf("%s cannot restore %s: use one of %s", s.Name,
			sp.Incident.Kind, strings.Join(StrategiesWhere(func(o StrategyInfo) bool { return slices.Contains(o.Incidents, sp.Incident.Kind) }), ", "))})
	}
	p := &sp.Protection
	if s.Name == DelayedStandby && p.StandbyApplyDelay > 0 {
		if worst := sp.Detection.worstDetection(); worst >= p.StandbyApplyDelay {
			out = append(out, fieldProblem{"spec.protection.standbyApplyDelay", fmt.Sprintf(
				"the standby applies the incident after %s, but it may go undetected for %s: the standby would hold the harm too; make the delay longer than the detection",
				p.StandbyApplyDelay, worst)})
		}
	}
	return out
}

// WithStrategy returns a copy of sc restored by r instead of its own strategy (`pgdrill run
// --strategy`, `--runbook`, or a library caller of a drill): when the scenario lacks the
// protection the strategy restores from, it is turned on with defaults, and notes say what was
// turned on. It is refused, saying why, when the strategy still cannot restore the scenario —
// the same checks the file's own strategy gets, so an override cannot turn invalid input into a
// failed drill.
func WithStrategy(sc *Scenario, r Restore) (*Scenario, []string, error) {
	info, err := LookupStrategy(string(r.Strategy))
	if err != nil {
		return nil, nil, err
	}
	if (r.Strategy == RunbookStrategy) != (r.Runbook != nil) {
		return nil, nil, fmt.Errorf("strategy %s for scenario %s: a runbook command goes with strategy runbook only", r.Strategy, sc.Metadata.ID)
	}
	out := *sc
	out.Spec.Restore = r
	var notes []string
	if info.protected != nil && !info.protected(out.Spec.Protection) {
		notes = append(notes, fmt.Sprintf("%s restores from protection scenario %s does not take: %s", r.Strategy, sc.Metadata.ID, info.equip(&out.Spec)))
	}
	var msgs []string
	for _, pr := range info.problems(&out.Spec) {
		msgs = append(msgs, pr.field+": "+pr.msg)
	}
	if len(msgs) > 0 {
		return nil, nil, fmt.Errorf("strategy %s cannot restore scenario %s: %s", r.Strategy, sc.Metadata.ID, strings.Join(msgs, "; "))
	}
	return &out, notes, nil
}

// StrategyTable is the README's table of strategies, in Markdown, written from the registry.
func StrategyTable() string {
	var b strings.Builder
	b.WriteString("| strategy | where the tenants come from | needs | restores | in a runbook | choose it when |\n" +
		"| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range strategyRegistry {
		needs := "nothing"
		if s.Needs != "" {
			needs = "`" + strings.TrimPrefix(s.Needs, "spec.") + "`"
		}
		runbook := "no: needs what the drill made"
		switch {
		case s.Name == RunbookStrategy:
			runbook = "—"
		case s.FromIncidentFile:
			runbook = "yes"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s | %s |\n", s.Name, s.Source, needs, s.restores(), runbook, s.ChooseWhen)
	}
	return b.String()
}

// IncidentNames lists the incident kinds the strategy restores.
func (s StrategyInfo) IncidentNames() []string { return names(s.Incidents) }

// restores says in words which incidents the strategy restores: the shorter of the list and
// what it leaves out.
func (s StrategyInfo) restores() string {
	var left []IncidentKind
	for _, k := range IncidentKinds() {
		if !slices.Contains(s.Incidents, k) {
			left = append(left, k)
		}
	}
	quote := func(ks []IncidentKind) string { return "`" + strings.Join(names(ks), "`, `") + "`" }
	switch {
	case len(left) == 0:
		return "every incident"
	case len(left) < len(s.Incidents):
		return "all but " + quote(left)
	}
	return quote(s.Incidents)
}
