package reports_test

import (
	"maps"
	"slices"
	"time"

	"github.com/pgdrill/pgdrill/reports"
)

// The hand-built reports the specs render: one per verdict the renderers treat differently.

var t0 = time.Date(2026, 3, 9, 2, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func at(ms int64) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func phase(name string, shard int, start, end int64) reports.Span {
	return reports.Span{Name: name, Kind: reports.KindPhase, Shard: shard, StartMS: start, EndMS: end, Start: at(start), End: at(end)}
}

func event(name string, when int64) reports.Span {
	return reports.Span{Name: name, Kind: reports.KindEvent, Shard: -1, StartMS: when, EndMS: when, Start: at(when), End: at(when)}
}

func duration(d time.Duration) reports.Quantity {
	return reports.Quantity{Unit: reports.UnitDuration, Value: d.Seconds()}
}

func objective(expr, metric string, passed bool, measured *reports.Quantity, threshold reports.Quantity, reason string) reports.ObjectiveResult {
	return reports.ObjectiveResult{Expression: expr, Metric: metric, Passed: passed, Measured: measured, Threshold: threshold, Reason: reason}
}

// passReport is the default drill going well: 12 tenants deleted on 3 shards, all back in
// 4 min 12 s against 15 min, no collateral.
func passReport() *reports.Report {
	const incident = 40_000
	r := &reports.Report{
		SchemaVersion: reports.SchemaVersion,
		RunID:         "20260309-020000-wrong-id-deletion-s42",
		Scenario: reports.Scenario{
			ID: "wrong-id-deletion", Title: "Cleanup script deletes tenants by the wrong ids",
			Hypothesis: "We can bring back the deleted tenants within 15 minutes without harming anyone else.",
			Owner:      "team-storage", Tier: "critical", Tags: []string{"atlassian-2022", "deletion"},
		},
		Seed: 42, Started: t0, Finished: at(incident + 262_000), Provider: "local",
		Cluster:  reports.Cluster{Shards: 4, Layout: "shared"},
		Dataset:  reports.Dataset{Tenants: 200, Rows: 1_000_000},
		Strategy: "pitr-sidecar", Verdict: reports.Pass,
		Reason: "every objective met: all 12 affected tenants restored exactly, no collateral",
		Incident: reports.Incident{
			Kind: "wrong-id-deletion", At: at(incident), AtMS: incident, HarmedRows: 48_210,
			Affected: []reports.TenantRef{{ID: 7, Shard: 0}, {ID: 19, Shard: 0}, {ID: 23, Shard: 1}, {ID: 31, Shard: 1},
				{ID: 44, Shard: 1}, {ID: 58, Shard: 2}, {ID: 61, Shard: 2}, {ID: 77, Shard: 2}, {ID: 90, Shard: 0},
				{ID: 103, Shard: 1}, {ID: 150, Shard: 2}, {ID: 188, Shard: 0}},
			Harms: []reports.Harm{
				{Shard: 0, Tenants: []int64{7, 19, 90, 188}, XID: "1042", LSN: "0/3A000028", Time: at(incident), OffsetMS: incident, Rows: 15_002},
				{Shard: 1, Tenants: []int64{23, 31, 44, 103}, XID: "988", LSN: "0/39000110", Time: at(incident + 180), OffsetMS: incident + 180, Rows: 17_311},
				{Shard: 2, Tenants: []int64{58, 61, 77, 150}, XID: "1011", LSN: "0/3B0001A0", Time: at(incident + 350), OffsetMS: incident + 350, Rows: 15_897},
			},
		},
		Timeline: []reports.Span{
			phase("provision", -1, 0, 9_000), phase("fill", -1, 9_000, 31_000), phase("protect", -1, 31_000, 38_000),
			event("incident", incident), phase("detect", -1, incident, incident+30_000), event("detected", incident+30_000),
		},
		Measures: reports.Measures{
			RTOMS: ptr[int64](252_000), RPOMS: ptr[int64](0), DetectMS: ptr[int64](30_000),
			Phases: []reports.PhaseDuration{{Name: "archive", MS: 4_000}, {Name: "provision", MS: 38_000},
				{Name: "replay", MS: 121_000}, {Name: "merge", MS: 47_000}, {Name: "verify", MS: 12_000}},
			RowsExpected: 48_210, RowsRestored: 48_210,
		},
		Objectives: []reports.ObjectiveResult{
			objective("rto<=15m", "rto", true, ptr(duration(252*time.Second)), duration(15*time.Minute), "rto was 4m12s, within the objective rto<=15m"),
			objective("rpo<=5s", "rpo", true, ptr(duration(0)), duration(5*time.Second), "rpo was 0s, within the objective rpo<=5s"),
			objective("completeness>=100%", "completeness", true, &reports.Quantity{Unit: reports.UnitPercent, Value: 100},
				reports.Quantity{Unit: reports.UnitPercent, Value: 100}, "completeness was 100%, meeting the objective completeness>=100%"),
			objective("collateral==0", "collateral", true, &reports.Quantity{Unit: reports.UnitRows}, reports.Quantity{Unit: reports.UnitRows},
				"collateral was 0 rows, meeting the objective collateral==0"),
			objective("integrity==ok", "integrity", true, &reports.Quantity{Unit: reports.UnitStatus, Value: 1},
				reports.Quantity{Unit: reports.UnitStatus, Value: 1}, "integrity checks passed: the schema is as it was, and every tenant is where the directory puts it"),
			objective("backups==verified", "backups", true, &reports.Quantity{Unit: reports.UnitStatus, Value: 1},
				reports.Quantity{Unit: reports.UnitStatus, Value: 1}, "every base backup verified and the WAL archive is unbroken through the incident"),
		},
		Checks: []reports.Check{
			{Name: "schema", Passed: true, Detail: "every table, column, constraint, index, sequence, trigger, type and function is as it was before the incident"},
			{Name: "placement", Passed: true, Detail: "every tenant's rows are on the shard the directory named before the incident"},
			{Name: "routing", Passed: true, Detail: "the directory routes every tenant to the shard its rows are on"},
		},
		Schema: []reports.SchemaChange{},
		Backups: []reports.BackupChain{
			{Shard: "shard-0", Backup: "shard-0-1", First: "000000010000000000000003", Last: "00000001000000000000003A", Verified: true},
			{Shard: "shard-1", Backup: "shard-1-1", First: "000000010000000000000003", Last: "000000010000000000000039", Verified: true},
			{Shard: "shard-2", Backup: "shard-2-1", First: "000000010000000000000003", Last: "00000001000000000000003B", Verified: true},
			{Shard: "shard-3", Backup: "shard-3-1", First: "000000010000000000000003", Last: "000000010000000000000038", Verified: true},
		},
		NextActions: []string{"Keep the nightly drill; consider lowering the RTO objective to 10 min."},
		Artifacts:   []reports.Artifact{{Name: "drill log", Path: "drill.log"}},
	}
	for _, s := range []struct {
		shard      int
		start, end int64
	}{{0, 0, 0}, {1, 900, 2_500}, {2, 1_400, 3_100}} {
		base := int64(incident + 30_000)
		r.Timeline = append(r.Timeline,
			phase("archive", s.shard, base+s.start, base+s.start+3_000+s.end/3),
			phase("provision", s.shard, base+s.start+4_000, base+s.start+38_000+s.end),
			phase("replay", s.shard, base+s.start+42_000+s.end, base+s.start+160_000+s.end),
			phase("merge", s.shard, base+s.start+160_000+s.end, base+s.start+205_000+s.end))
	}
	r.Timeline = append(r.Timeline, phase("verify", -1, incident+240_000, incident+252_000), event("verified", incident+252_000))
	for _, t := range r.Incident.Affected {
		rows := 1_000 + t.ID*37
		r.Tenants = append(r.Tenants, reports.TenantResult{ID: t.ID, Shard: t.Shard, Expected: rows, Restored: rows, Complete: true})
	}
	return r
}

// failReport is the full-shard-pitr strategy: fast, but it lost a tenant's rows and rolled
// bystanders back.
func failReport() *reports.Report {
	r := passReport()
	r.RunID = "20260309-030000-wrong-id-deletion-full-shard"
	r.Strategy, r.Verdict = "full-shard-pitr", reports.Fail
	r.Reason = "3 other tenants lost 41 rows of acknowledged writes, and tenant 23 came back incomplete"
	r.Measures.RTOMS = ptr[int64](1_080_000)
	// Rolling the shard back took longer than extracting tenants would have: verified at 18 min.
	n := len(r.Timeline)
	r.Timeline[n-2] = phase("verify", -1, 40_000+1_060_000, 40_000+1_080_000)
	r.Timeline[n-1] = event("verified", 40_000+1_080_000)
	r.Finished = at(40_000 + 1_090_000)
	r.Measures.RowsRestored = 48_210 - 58
	r.Tenants[2].Restored -= 55
	r.Tenants[2].Lost, r.Tenants[2].Wrong, r.Tenants[2].Complete = 52, 3, false
	r.Tenants[4].Restored -= 3
	r.Tenants[4].Duplicated, r.Tenants[4].Resurrected, r.Tenants[4].Complete = 1, 2, false
	r.Objectives[0] = objective("rto<=15m", "rto", false, ptr(duration(18*time.Minute)), duration(15*time.Minute),
		"rto was 18m, over the objective rto<=15m by 3m")
	r.Objectives[2] = objective("completeness>=100%", "completeness", false, &reports.Quantity{Unit: reports.UnitPercent, Value: 99.87},
		reports.Quantity{Unit: reports.UnitPercent, Value: 100}, "completeness was 99.87%, below the objective completeness>=100%")
	r.Objectives[3] = objective("collateral==0", "collateral", false, &reports.Quantity{Unit: reports.UnitRows, Value: 41},
		reports.Quantity{Unit: reports.UnitRows}, "collateral was 41 rows, not meeting the objective collateral==0")
	r.Collateral = []reports.Collateral{
		{Tenant: 12, Shard: 1, Table: "issues", Rows: 30, Differs: "30 changed"},
		{Tenant: 12, Shard: 1, Table: "comments", Rows: 6, Differs: "4 missing, 2 changed"},
		{Tenant: 40, Shard: 1, Table: "users", Rows: 4, Differs: "4 missing"},
		{Tenant: 171, Shard: 1, Table: "attachments", Rows: 1, Differs: "1 extra"},
	}
	r.Checks[0] = reports.Check{Name: "schema", Detail: "1 difference(s) from the schema before the incident: index issues_tenant_id_project_id_idx on shard 1 is gone"}
	r.Schema = []reports.SchemaChange{{Place: "shard 1", Kind: "index", Name: "issues_tenant_id_project_id_idx", Change: "gone",
		Detail: "index issues_tenant_id_project_id_idx on shard 1 is gone"}}
	r.Objectives[4] = objective("integrity==ok", "integrity", false, &reports.Quantity{Unit: reports.UnitStatus},
		reports.Quantity{Unit: reports.UnitStatus, Value: 1}, "integrity checks failed: the schema differs from before the incident, or a tenant is not where the directory puts it")
	r.Problems = []reports.Problem{
		{Phase: "merge", Message: "rolling shard 1 back to before the harm discarded 41 acknowledged writes of 3 tenants who were never affected"},
		{Phase: "verify", Message: "tenant 23 is missing 52 rows in issues and comments; 3 rows differ"},
	}
	r.NextActions = []string{
		"Do not use full-shard-pitr on shared shards: switch the runbook to pitr-sidecar.",
		"Re-run the drill with --strategy pitr-sidecar and compare.",
	}
	return r
}

// errorReport is a harness error: no sidecar could be started, so the restore could not run and
// nothing could be judged.
func errorReport() *reports.Report {
	r := passReport()
	r.RunID = "20260310-020000-wrong-id-deletion-s42"
	r.Started, r.Finished = t0.Add(24*time.Hour), t0.Add(24*time.Hour+95*time.Second)
	r.Verdict, r.Reason = reports.Error, "the harness broke, so this drill says nothing about the restore: provision sidecar of shard 1: no space left on /dev/shm"
	r.Timeline = r.Timeline[:6]
	r.Timeline = append(r.Timeline, reports.Span{Name: "provision", Kind: reports.KindPhase, Shard: 1, StartMS: 75_000, EndMS: 95_000,
		Start: at(75_000), End: at(95_000), Error: "no space left on /dev/shm"})
	r.Measures = reports.Measures{DetectMS: ptr[int64](30_000), RowsExpected: 48_210}
	r.Tenants, r.Problems = nil, []reports.Problem{{Phase: "provision", Message: "provision sidecar of shard 1: no space left on /dev/shm"}}
	for i := range r.Objectives {
		o := &r.Objectives[i]
		o.Passed, o.Inconclusive, o.Measured = false, true, nil
		o.Reason = o.Metric + " was not measured, so " + o.Expression + " cannot pass"
	}
	for i := range r.Checks {
		r.Checks[i] = reports.Check{Name: r.Checks[i].Name, Inconclusive: true, Detail: "not run: the restore did not finish"}
	}
	r.NextActions = []string{"Free space under the work root (`pgdrill doctor` says how much there is) and run `pgdrill run` again."}
	return r
}

// brokenBackupsReport found a gap in a shard's WAL archive before the restore, so the restore was
// not attempted: what a drill is for, before a real incident finds it.
func brokenBackupsReport() *reports.Report {
	r := errorReport()
	r.RunID = "20260312-020000-wrong-id-deletion-s42"
	r.Started, r.Finished = t0.Add(72*time.Hour), t0.Add(72*time.Hour+80*time.Second)
	r.Verdict = reports.Fail
	r.Reason = "the backups a restore needs are broken: shard-1: WAL archive is missing 1 segment(s): 000000010000000000000039"
	r.Timeline = append(r.Timeline[:6], phase("backups", -1, 70_000, 72_000))
	r.Backups[1] = reports.BackupChain{Shard: "shard-1", Backup: "shard-1-1", First: "000000010000000000000003", Last: "00000001000000000000003C",
		Problem: "WAL archive is missing 1 segment(s): 000000010000000000000039"}
	r.Objectives[5] = objective("backups==verified", "backups", false, &reports.Quantity{Unit: reports.UnitStatus},
		reports.Quantity{Unit: reports.UnitStatus, Value: 1}, "the backups are broken: a base backup does not verify or the WAL archive has a gap")
	r.Problems = []reports.Problem{{Phase: "backups", Message: r.Reason}}
	r.NextActions = []string{"Find why shard 1's archive lost a segment (archive_command, retention) and take a new base backup; a real incident would have hit this."}
	return r
}

// inconclusiveReport measured everything but RPO: the ledger was lost.
func inconclusiveReport() *reports.Report {
	r := passReport()
	r.RunID = "20260311-020000-wrong-id-deletion-s42"
	r.Started, r.Finished = t0.Add(48*time.Hour), t0.Add(48*time.Hour+292*time.Second)
	r.Verdict, r.Reason = reports.Inconclusive, "rpo could not be measured: the workload ledger was not written"
	r.Measures.RPOMS = nil
	r.Objectives[1] = reports.ObjectiveResult{Expression: "rpo<=5s", Metric: "rpo", Inconclusive: true,
		Threshold: duration(5 * time.Second), Reason: "rpo was not measured, so rpo<=5s cannot pass"}
	r.Problems = []reports.Problem{{Phase: "workload", Message: "the ledger file was empty after the run"}}
	r.NextActions = []string{"Fix the ledger and re-run; until then RPO is unknown."}
	return r
}

// examples names the hand-built reports, for golden files.
var examples = map[string]func() *reports.Report{
	"pass": passReport, "fail": failReport, "error": errorReport, "inconclusive": inconclusiveReport,
	"broken-backups": brokenBackupsReport,
}

// exampleNames lists the examples in order: specs built from them must not follow the map's
// random order, or every run would build its spec tree differently.
func exampleNames() []string { return slices.Sorted(maps.Keys(examples)) }
