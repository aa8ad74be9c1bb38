package drill

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/pgdrill/pgdrill/harness/logtail"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/reports"
)

// Report converts the outcome into the versioned report model every renderer reads.
func Report(o *Outcome) *reports.Report {
	sc := o.Scenario
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion, RunID: o.RunID, Seed: o.Seed, Started: o.Started, Finished: o.Finished,
		Provider: o.Provider, Strategy: o.Strategy, Verdict: reports.Verdict(o.Verdict), Reason: o.Reason,
		Scenario: reports.Scenario{ID: sc.Metadata.ID, Title: sc.Metadata.Title, Hypothesis: sc.Spec.Hypothesis,
			Owner: sc.Metadata.Owner, Tier: string(sc.Metadata.Tier), Tags: sc.Metadata.Tags},
		Cluster:  reports.Cluster{Shards: o.Shards, Layout: string(o.Layout)},
		Dataset:  reports.Dataset{Tenants: o.Tenants, Rows: o.Rows, Schema: o.SchemaName},
		Timeline: []reports.Span{}, Objectives: []reports.ObjectiveResult{}, Tenants: []reports.TenantResult{},
		Collateral: []reports.Collateral{}, Checks: []reports.Check{}, Schema: []reports.SchemaChange{},
		Backups: []reports.BackupChain{}, Problems: []reports.Problem{},
		Notes: o.Notes, NextActions: nextActions(o), Artifacts: []reports.Artifact{}, Projection: o.Projection,
	}
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	for _, e := range o.Events {
		r.Timeline = append(r.Timeline, reports.Span{Name: e.Name, Kind: reports.KindPhase, Shard: e.Shard,
			StartMS: ms(e.Start), EndMS: ms(e.End), Start: e.At, End: e.At.Add(e.End - e.Start), Error: e.Error})
	}
	for _, f := range o.Faults {
		rf := reports.Fault{Kind: f.Kind, Target: f.Target, At: f.Trigger, Description: f.Description, InjectedMS: ms(f.Injected),
			HealedMS: ms(f.HealedAt), Confirmed: f.Confirmed, Healed: f.Healed, Problem: f.Problem}
		r.Faults = append(r.Faults, rf)
		if f.Injected > 0 {
			end := max(f.HealedAt, f.Injected)
			if f.HealedAt == 0 {
				end = o.Finished.Sub(o.Started)
			}
			r.Timeline = append(r.Timeline, reports.Span{Name: "fault: " + f.Description, Kind: reports.KindFault, Shard: -1,
				StartMS: ms(f.Injected), EndMS: ms(end), Start: f.InjectedAt, End: f.InjectedAt.Add(end - f.Injected), Error: f.Problem})
		}
	}
	if inc := o.Incident; inc != nil {
		r.Incident = reports.Incident{Kind: inc.Kind, At: inc.First(), AtMS: ms(inc.FirstNoted().Sub(o.Started)), Knowledge: string(o.Knowledge)}
		if l := o.Located; l != nil {
			r.Incident.Located = &reports.Located{Reported: l.Reported, Found: l.Found, Missed: l.Missed, Innocent: l.Innocent,
				TargetsExact: l.TargetsExact, TookMS: l.Took.Milliseconds(), AfterMS: l.After.Milliseconds()}
			for _, off := range l.Off {
				r.Incident.Located.Off = append(r.Incident.Located.Off, reports.TargetOff{Shard: off.Shard, WALBytes: off.WALBytes,
					MS: off.Time.Milliseconds(), Missing: off.Missing})
			}
		}
		for _, t := range inc.Affected {
			r.Incident.Affected = append(r.Incident.Affected, reports.TenantRef{ID: t.ID, Shard: t.Shard})
		}
		for _, h := range inc.Harms {
			r.Incident.HarmedRows += h.Rows
			at := ms(h.Noted.Sub(o.Started)) // the harness's clock, as every other offset
			r.Incident.Harms = append(r.Incident.Harms, reports.Harm{Shard: h.Shard, Tenants: h.Tenants, XID: h.XID,
				LSN: h.LSN, Time: h.Time, OffsetMS: at, Rows: h.Rows})
			r.Timeline = append(r.Timeline, reports.Span{Name: "harm", Kind: reports.KindEvent, Shard: h.Shard,
				StartMS: at, EndMS: at, Start: h.Time, End: h.Time})
		}
		if br := o.BlastRadius; br != nil {
			r.Incident.Summary = fmt.Sprintf("a rollout in %d rings harmed %d of the %d tenants it targeted (%d of %d rows)",
				len(o.Rings), br.HarmedTenants, br.TargetedTenants, br.HarmedRows, br.TargetedRows)
		}
	}
	r.Measures = measures(o)
	for _, res := range o.Results {
		or := reports.ObjectiveResult{Expression: res.Objective.String(), Metric: string(res.Objective.Metric),
			Passed: res.Passed, Inconclusive: res.Inconclusive, Threshold: quantity(res.Threshold), Reason: res.Reason}
		if res.Measured != nil {
			q := quantity(*res.Measured)
			or.Measured = &q
		}
		r.Objectives = append(r.Objectives, or)
	}
	for _, t := range o.Affected {
		r.Tenants = append(r.Tenants, reports.TenantResult{ID: t.ID, Shard: t.Shard, Expected: t.Expected,
			Restored: t.Restored(), Lost: t.Lost, Wrong: t.Wrong, Duplicated: t.Duplicated,
			Resurrected: t.Resurrected, Unexpected: t.Unexpected, Complete: t.Complete()})
	}
	for _, d := range o.Collateral {
		r.Collateral = append(r.Collateral, reports.Collateral{Tenant: d.Tenant, Shard: d.Shard, Table: d.Table,
			Rows: d.Rows(), Differs: d.Differs()})
	}
	for _, c := range o.Integrity {
		r.Checks = append(r.Checks, reports.Check{Name: c.Name, Passed: c.Passed, Detail: c.Detail})
	}
	for _, c := range o.Schema {
		r.Schema = append(r.Schema, reports.SchemaChange{Place: c.Place, Kind: c.Kind, Name: c.Name, Change: c.Change, Detail: c.Detail})
	}
	for _, b := range o.Backups {
		r.Backups = append(r.Backups, reports.BackupChain{Shard: b.Shard, Backup: b.Backup, First: b.First, Last: b.Last,
			Verified: b.Whole(), Problem: b.Problem()})
	}
	for _, p := range o.Problems {
		r.Problems = append(r.Problems, reports.Problem{Phase: failedStep(o, p), Message: p})
	}
	if o.Restore != nil && o.Restore.Output != "" {
		r.Runbook = &reports.RunbookOutput{Tail: logtail.Last(o.Restore.Output, reports.RunbookTailLines), Log: o.Restore.Output}
	}
	return r
}

// measures gathers the report's figures from the outcome's measures.
func measures(o *Outcome) reports.Measures {
	var m reports.Measures
	at := func(metric objective.Metric) *int64 {
		v, ok := o.Measures[metric]
		if !ok {
			return nil
		}
		n := int64(math.Round(v.Number * 1000)) // 1.005 s is 1005 ms, not 1004
		return &n
	}
	m.RTOMS, m.RPOMS, m.DetectMS = at(objective.RTO), at(objective.RPO), at(objective.Detect)
	for _, name := range objective.Phases() {
		if v := at(objective.Phase(name)); v != nil {
			m.Phases = append(m.Phases, reports.PhaseDuration{Name: name, MS: *v})
		}
	}
	for _, t := range o.Affected {
		m.RowsExpected += t.Expected
		m.RowsRestored += t.Restored()
	}
	return m
}

func quantity(v objective.Value) reports.Quantity {
	return reports.Quantity{Unit: reports.Unit(v.Unit), Value: v.Number}
}

// failedStep names the step a problem came from, when its text says so.
func failedStep(o *Outcome, problem string) string {
	i := slices.IndexFunc(o.Events, func(e Event) bool { return e.Error != "" && strings.Contains(problem, e.Error) })
	if i < 0 {
		return ""
	}
	return o.Events[i].Name
}

// nextActions says what a reader should do next, from what the drill found.
func nextActions(o *Outcome) []string {
	var out []string
	switch o.Verdict {
	case score.Error:
		if o.InvalidInput {
			out = append(out, "Fix the scenario as the reason says (`pgdrill schema inspect` explains what pgdrill reads of a schema), then rerun: "+
				fmt.Sprintf("pgdrill run %s --seed %d", o.ScenarioID, o.Seed))
			break
		}
		out = append(out, "Fix the harness problem above (see `pgdrill doctor`), then rerun with the same seed: "+
			fmt.Sprintf("pgdrill run %s --seed %d", o.ScenarioID, o.Seed))
	case score.Aborted:
		out = append(out, fmt.Sprintf("Rerun the drill to the end: pgdrill run %s --seed %d", o.ScenarioID, o.Seed))
	case score.Pass:
		out = append(out, "Keep this drill in the nightly schedule; raise the dataset or tighten the objectives when it stays green.")
	}
	if len(o.Collateral) > 0 {
		out = append(out, "Restore only the affected tenants (pitr-sidecar or delayed-standby) instead of rolling whole shards back: other tenants lost writes.")
	}
	for _, t := range o.Affected {
		if !t.Complete() {
			out = append(out, "Find why affected rows did not come back: report.json lists them by key under affected[].examples.")
			break
		}
	}
	for _, res := range o.Results {
		if !res.Passed && !res.Inconclusive && (res.Objective.Metric == objective.RTO || res.Objective.Metric == objective.Detect) {
			out = append(out, "Shorten time to restore: detect sooner (a probe instead of waiting), take base backups more often, or keep a delayed standby.")
			break
		}
	}
	if o.Verdict == score.Fail && len(o.Affected) == 0 {
		out = append(out, "The restore itself failed: check the backup chain and the WAL archive (`pgdrill` names missing segments).")
	}
	return out
}
