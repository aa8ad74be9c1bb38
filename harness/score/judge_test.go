package score_test

import (
	"errors"
	"slices"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// The judge's rules, table by table, on findings put together by hand: no server is needed to
// decide a verdict, so none is started.

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func ptr[T any](v T) *T { return &v }

func objectives(texts ...string) objective.Objectives {
	GinkgoHelper()
	objs, err := objective.ParseAll(texts)
	Expect(err).NotTo(HaveOccurred())
	return objs
}

// clean is a drill that restored its one affected tenant exactly in 90 s.
func clean() score.Drill {
	return score.Drill{
		Clock:            score.Clock{Incident: t0, Detected: t0.Add(10 * time.Second), Verified: t0.Add(90 * time.Second)},
		Findings:         &score.Findings{Writes: 40, Affected: []score.Tenant{{ID: 1001, Expected: 500}}, Integrity: []score.Check{{Name: "schema", Passed: true}}},
		Chains:           []backup.ChainReport{{Shard: "shard-0", Backup: "b"}},
		WorkloadExpected: true,
	}
}

var _ = Describe("the judge", func() {
	all := objectives("rto<=2m", "completeness>=100%", "collateral==0", "integrity==ok", "backups==verified")

	DescribeTable("decides the verdict in the product's order",
		func(change func(*score.Drill, *score.Ending), verdict score.Verdict, reason string) {
			d, end := clean(), score.Ending{}
			change(&d, &end)
			j := score.Judge(d, all, end)
			Expect(j.Verdict).To(Equal(verdict), j.Reason)
			Expect(j.Reason).To(ContainSubstring(reason))
		},
		Entry("a clean restore passes", func(*score.Drill, *score.Ending) {}, score.Pass, "all 1 affected tenants were restored exactly"),
		Entry("an interrupted drill is ABORTED, whatever it found", func(d *score.Drill, e *score.Ending) {
			e.Interrupted = "signal: interrupt"
			d.Findings.Affected[0].Lost = 3
		}, score.Aborted, "interrupted (signal: interrupt)"),
		Entry("a restore that did not complete FAILs", func(d *score.Drill, e *score.Ending) {
			d.Findings, e.Restore = nil, errors.New("replay on shard 0: WAL gap")
		}, score.Fail, "the restore did not complete: replay on shard 0: WAL gap"),
		Entry("a broken harness is an ERROR, never a FAIL", func(d *score.Drill, e *score.Ending) {
			d.Findings, e.Harness = nil, errors.New("connect to catalog: refused")
		}, score.Error, "the harness broke"),
		Entry("broken backups FAIL even when the harness broke afterwards", func(d *score.Drill, e *score.Ending) {
			d.Findings, e.Harness = nil, errors.New("teardown")
			d.Chains[0].Missing = []string{"000000010000000000000007"}
		}, score.Fail, "000000010000000000000007"),
		Entry("broken backups FAIL a restore that came back anyway", func(d *score.Drill, _ *score.Ending) {
			d.Chains[0].BackupProblem = "checksum mismatch for file \"PG_VERSION\""
		}, score.Fail, "PG_VERSION"),
		Entry("one lost row FAILs completeness>=100%", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Affected[0].Lost = 1
		}, score.Fail, "1 row(s) of 1 of the 1 affected tenants are not as they must be"),
		Entry("a resurrected row FAILs", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Affected[0].Resurrected = 1
		}, score.Fail, "are not as they must be"),
		Entry("collateral FAILs, counted in rows", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Collateral = []score.Harmed{{TableDiff: truth.TableDiff{TenantTable: truth.TenantTable{Tenant: 1002, Table: "users"}, Missing: 2, Changed: 1}}}
		}, score.Fail, "3 row(s) of 1 unaffected tenant(s) differ"),
		Entry("a failed integrity check FAILs", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Integrity[0] = score.Check{Name: "schema", Detail: "index x on shard 0 is gone"}
		}, score.Fail, "integrity check schema failed: index x on shard 0 is gone"),
		Entry("a missed objective FAILs", func(d *score.Drill, _ *score.Ending) {
			d.Clock.Verified = t0.Add(3 * time.Minute)
		}, score.Fail, "rto was 3m, over the objective rto<=2m"),
		Entry("time the harness spent checking backups is not the team's", func(d *score.Drill, _ *score.Ending) {
			d.Clock.Verified, d.Clock.Checks = t0.Add(3*time.Minute), 2*time.Minute
		}, score.Pass, "restored exactly"),
		Entry("a row whose state cannot be judged is INCONCLUSIVE", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Unresolved = 1
		}, score.Inconclusive, "cannot be judged"),
		Entry("a workload that acknowledged nothing is INCONCLUSIVE", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Writes = 0
		}, score.Inconclusive, "the workload acknowledged no write"),
		Entry("an excused row of unknown outcome is a condition", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Excused = 2
		}, score.PassWithConditions, "2 row(s) a write of unknown outcome touched"),
		Entry("a loss beside an excused row still FAILs", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Excused, d.Findings.Affected[0].Lost = 2, 1
		}, score.Fail, "not as they must be"),
		Entry("an interruption outweighs a failed restore and broken backups", func(d *score.Drill, e *score.Ending) {
			d.Findings, e.Interrupted, e.Restore = nil, "timeout", errors.New("replay: WAL gap")
			d.Chains[0].Missing = []string{"000000010000000000000007"}
		}, score.Aborted, "interrupted (timeout)"),
		Entry("a failed restore is a FAIL, not an ERROR, when the harness broke too", func(d *score.Drill, e *score.Ending) {
			d.Findings, e.Restore, e.Harness = nil, errors.New("merge: duplicate key"), errors.New("teardown")
		}, score.Fail, "the restore did not complete: merge: duplicate key"),
		Entry("a failed restore FAILs even when what it left behind was verified", func(_ *score.Drill, e *score.Ending) {
			e.Restore = errors.New("merge: duplicate key")
		}, score.Fail, "the restore did not complete"),
		Entry("broken backups are the reason before a failed restore's own error", func(d *score.Drill, e *score.Ending) {
			d.Findings, e.Restore = nil, errors.New("replay on shard 0: WAL gap")
			d.Chains[0].ArchiveProblem = "archive_command failed"
		}, score.Fail, "the backups a restore needs are broken: shard-0: archive_command failed"),
		Entry("a drill that ended unverified without saying why is an ERROR, a harness bug", func(d *score.Drill, _ *score.Ending) {
			d.Findings = nil
		}, score.Error, "the drill ended without verifying the restore"),
		Entry("backups nobody checked make backups==verified INCONCLUSIVE, never a pass", func(d *score.Drill, _ *score.Ending) {
			d.Chains = nil
		}, score.Inconclusive, "backups was not measured, so backups==verified cannot pass"),
		Entry("a failure outweighs a doubt", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Affected[0].Lost, d.Findings.Unresolved = 1, 1
		}, score.Fail, "not as they must be"),
		Entry("a doubt outweighs a condition", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Unresolved, d.Findings.Excused = 1, 1
		}, score.Inconclusive, "cannot be judged"),
		Entry("no write is no doubt when the scenario asked for none", func(d *score.Drill, _ *score.Ending) {
			d.Findings.Writes, d.WorkloadExpected = 0, false
		}, score.Pass, "restored exactly"),
	)

	DescribeTable("fails every kind of row that is not as it must be, when nothing bounds it",
		func(bad func(*score.Tenant)) {
			d := clean()
			bad(&d.Findings.Affected[0])
			j := score.Judge(d, all, score.Ending{})
			Expect(j.Verdict).To(Equal(score.Fail), j.Reason)
			Expect(j.Reason).To(ContainSubstring("1 row(s) of 1 of the 1 affected tenants are not as they must be"))
		},
		Entry("lost", func(t *score.Tenant) { t.Lost = 1 }),
		Entry("wrong", func(t *score.Tenant) { t.Wrong = 1 }),
		Entry("duplicated", func(t *score.Tenant) { t.Duplicated = 1 }),
		Entry("resurrected", func(t *score.Tenant) { t.Resurrected = 1 }),
		Entry("unexpected", func(t *score.Tenant) { t.Unexpected = 1 }),
	)

	It("lists what went wrong, failures before doubts, and no condition among them", func() {
		d := clean()
		d.Findings.Affected[0].Lost, d.Findings.Unresolved, d.Findings.Excused = 1, 1, 1
		problems := score.Judge(d, objectives("rto<=2m"), score.Ending{}).Problems
		Expect(problems).To(HaveLen(2))
		Expect(problems[0]).To(ContainSubstring("not as they must be"))
		Expect(problems[1]).To(ContainSubstring("cannot be judged"))

		d = clean()
		d.Findings.Excused = 1
		Expect(score.Judge(d, all, score.Ending{}).Problems).To(BeEmpty(), "a condition is for a person to see, not a problem")
	})

	It("lists broken backups first, then the errors the drill ended with", func() {
		d, end := clean(), score.Ending{Restore: errors.New("replay: WAL gap"), Harness: errors.New("teardown: busy")}
		d.Findings = nil
		d.Chains = append(d.Chains, backup.ChainReport{Shard: "shard-1", Backup: "b1", Missing: []string{"000000010000000000000009"}})
		j := score.Judge(d, all, end)
		Expect(j.Verdict).To(Equal(score.Fail))
		Expect(j.Problems).To(Equal([]string{
			"the backups a restore needs are broken: shard-1: " + d.Chains[1].Problem(),
			end.Restore.Error(), end.Harness.Error(),
		}), "the whole chain (shard-0) is not named")
	})

	DescribeTable("lets an objective that bounds a harm decide it, and fails any harm nothing bounds",
		func(objs objective.Objectives, lost, collateral int64, verdict score.Verdict, reason string) {
			d := clean()
			d.Findings.Affected[0].Lost = lost
			if collateral > 0 {
				d.Findings.Collateral = []score.Harmed{{TableDiff: truth.TableDiff{TenantTable: truth.TenantTable{Tenant: 1002, Table: "users"}, Missing: collateral}}}
			}
			j := score.Judge(d, objs, score.Ending{})
			Expect(j.Verdict).To(Equal(verdict), j.Reason)
			Expect(j.Reason).To(ContainSubstring(reason))
			if verdict == score.PassWithConditions {
				Expect(j.Problems).To(BeEmpty(), "what an objective tolerates is a condition, not a problem")
			}
		},
		Entry("collateral<=5 tolerates 3 rows, as a condition", objectives("collateral<=5"), int64(0), int64(3),
			score.PassWithConditions, "3 row(s) of 1 unaffected tenant(s) differ from what their own writes say they must hold, within the objectives"),
		Entry("collateral<=5 fails 6 rows", objectives("collateral<=5"), int64(0), int64(6), score.Fail, "collateral was 6 rows"),
		Entry("collateral nothing bounds fails", objectives("rto<=2m"), int64(0), int64(1), score.Fail, "unaffected tenant(s) differ"),
		Entry("completeness>=99% tolerates 5 lost rows of 500", objectives("completeness>=99%"), int64(5), int64(0),
			score.PassWithConditions, "within the objectives"),
		Entry("lost_rows<=2 fails 5 lost rows", objectives("lost_rows<=2"), int64(5), int64(0), score.Fail, "lost_rows was 5 rows"),
		Entry("a loss nothing bounds fails", objectives("rto<=2m"), int64(1), int64(0), score.Fail, "not as they must be"),
		Entry("completeness>=99% and lost_rows<=10 both met tolerate 5 lost rows", objectives("completeness>=99%", "lost_rows<=10"),
			int64(5), int64(0), score.PassWithConditions, "are not as they must be, within the objectives"),
		Entry("of two bounds on a loss, one missed fails it", objectives("completeness>=99%", "lost_rows<=2"), int64(5), int64(0),
			score.Fail, "not as they must be"),
		Entry("a bound on lost rows tolerates no collateral", objectives("lost_rows<=10"), int64(0), int64(1),
			score.Fail, "unaffected tenant(s) differ"),
		Entry("a bound on collateral tolerates no loss", objectives("collateral<=5"), int64(1), int64(0),
			score.Fail, "not as they must be"),
		Entry("each harm within its own bound is a condition of its own", objectives("lost_rows<=10", "collateral<=5"), int64(2), int64(3),
			score.PassWithConditions, "are not as they must be, within the objectives; 3 row(s) of 1 unaffected tenant(s) differ"),
		Entry("an exact bound is met at its value", objectives("collateral<=5"), int64(0), int64(5),
			score.PassWithConditions, "within the objectives"),
	)

	DescribeTable("lets lost_rows bound only the rows it counts, lost or wrong",
		func(set func(*score.Tenant), verdict score.Verdict) {
			d := clean()
			set(&d.Findings.Affected[0])
			j := score.Judge(d, objectives("lost_rows<=10"), score.Ending{})
			Expect(j.Verdict).To(Equal(verdict), j.Reason)
		},
		Entry("3 lost rows are within it", func(t *score.Tenant) { t.Lost = 3 }, score.PassWithConditions),
		Entry("3 wrong rows are within it", func(t *score.Tenant) { t.Wrong = 3 }, score.PassWithConditions),
		Entry("3 resurrected rows are not: it does not count them", func(t *score.Tenant) { t.Resurrected = 3 }, score.Fail),
		Entry("3 duplicated rows are not", func(t *score.Tenant) { t.Duplicated = 3 }, score.Fail),
		Entry("3 unexpected rows are not", func(t *score.Tenant) { t.Unexpected = 3 }, score.Fail),
		Entry("a lost row beside a resurrected one fails for the resurrected", func(t *score.Tenant) { t.Lost, t.Resurrected = 1, 1 }, score.Fail),
	)

	It("tolerates nothing by a bound that could not be measured", func() {
		d := clean()
		d.Findings.Affected[0] = score.Tenant{ID: 1001, Unexpected: 2} // nothing expected: completeness is not measured
		j := score.Judge(d, objectives("completeness>=99%"), score.Ending{})
		Expect(j.Verdict).To(Equal(score.Fail), j.Reason)
		Expect(j.Reason).To(ContainSubstring("not as they must be"))
		Expect(j.Problems).To(ContainElement(ContainSubstring("completeness was not measured")), "and the bound is a doubt of its own")
	})

	DescribeTable("measures only what it saw",
		func(change func(*score.Drill), metric objective.Metric, want *objective.Value) {
			d := clean()
			change(&d)
			m := d.Measure()
			if want == nil {
				Expect(m).NotTo(HaveKey(metric))
				return
			}
			Expect(m).To(HaveKeyWithValue(metric, *want))
		},
		Entry("a phase lasts from its earliest start on any shard to its latest end", func(d *score.Drill) {
			d.Clock.Phases = []score.Phase{{Name: "replay", Shard: 0, Start: t0.Add(20 * time.Second), End: t0.Add(30 * time.Second)},
				{Name: "replay", Shard: 1, Start: t0.Add(15 * time.Second), End: t0.Add(25 * time.Second)},
				{Name: "merge", Shard: 1, Start: t0.Add(25 * time.Second), End: t0.Add(70 * time.Second)}}
		}, objective.Phase("replay"), ptr(objective.Duration(30*time.Second-15*time.Second))),
		Entry("detection that did not happen is not measured", func(d *score.Drill) { d.Clock.Detected = time.Time{} },
			objective.Detect, nil),
		Entry("a blind restore that found 2 of 3 victims located 66.7%", func(d *score.Drill) {
			d.Located = &score.Located{Victims: 3, Found: 2, TargetsExact: true}
		}, objective.Located, ptr(objective.Percent(200.0/3))),
		Entry("a blind restore with one wrong recovery target misses the target", func(d *score.Drill) {
			d.Located = &score.Located{Victims: 3, Found: 3}
		}, objective.Target, ptr(objective.Status(false))),
		Entry("a told drill measures no finding", func(*score.Drill) {}, objective.Located, nil),
		Entry("one broken chain breaks the backups", func(d *score.Drill) {
			d.Chains = append(d.Chains, backup.ChainReport{Shard: "shard-1", BackupProblem: "checksum mismatch"})
		}, objective.Backups, ptr(objective.Status(false))),
		Entry("one failed check breaks integrity", func(d *score.Drill) {
			d.Findings.Integrity = append(d.Findings.Integrity, score.Check{Name: "placement"})
		}, objective.Integrity, ptr(objective.Status(false))),
		Entry("completeness of nothing expected is not measured", func(d *score.Drill) {
			d.Findings.Affected = []score.Tenant{{ID: 1001}}
		}, objective.Completeness, nil),
		Entry("completeness never goes below zero", func(d *score.Drill) {
			d.Findings.Affected = []score.Tenant{{ID: 1001, Expected: 2, Unexpected: 5}}
		}, objective.Completeness, ptr(objective.Percent(0))),
		Entry("an unverified restore has no RTO", func(d *score.Drill) { d.Findings = nil }, objective.RTO, nil),
		Entry("an unverified restore has no collateral figure, not a zero one", func(d *score.Drill) { d.Findings = nil },
			objective.Collateral, nil),
	)

	It("measures completeness, lost rows and collateral in rows, and RTO on the harness's clock", func() {
		d := clean()
		d.Findings.Affected = []score.Tenant{{ID: 1, Expected: 200, Lost: 2, Wrong: 1, Duplicated: 1}, {ID: 2, Expected: 800}}
		d.Findings.Collateral = []score.Harmed{{TableDiff: truth.TableDiff{Extra: 4}}}
		m := d.Measure()
		Expect(m[objective.Completeness].Number).To(BeNumerically("~", 99.6, 1e-9), "4 bad rows of 1000")
		Expect(m[objective.LostRows].Number).To(BeEquivalentTo(3), "lost and wrong rows; an extra copy is not a lost row")
		Expect(m[objective.Collateral].Number).To(BeEquivalentTo(4))
		Expect(m[objective.RTO]).To(Equal(objective.Duration(90 * time.Second)))
		Expect(m[objective.Detect]).To(Equal(objective.Duration(10 * time.Second)))
		Expect(m[objective.Backups]).To(Equal(objective.Status(true)))
		Expect(d.Findings.Affected[0].Restored()).To(BeEquivalentTo(196), "what reports call restored agrees with completeness")
	})
})

var _ = Describe("tenant scoring", func() {
	It("classes each differing row, and tells a resurrected row from an unexpected one by the ledger", func() {
		tt := func(table string) truth.TenantTable { return truth.TenantTable{Tenant: 7, Table: table} }
		diffs := []truth.TableDiff{
			{TenantTable: tt("comments"), Rows: []truth.RowDiff{
				{Kind: truth.Missing, Key: []string{"7", "1"}, Copies: 1}, {Kind: truth.Changed, Key: []string{"7", "2"}, Copies: 1},
				{Kind: truth.Extra, Key: []string{"7", "3"}, Copies: 1}, {Kind: truth.Extra, Key: []string{"7", "9"}, Copies: 2},
				{Kind: truth.Duplicated, Key: []string{"7", "4"}, Copies: 1}}},
			{TenantTable: truth.TenantTable{Tenant: 8, Table: "comments"}, Rows: []truth.RowDiff{{Kind: truth.Missing, Key: []string{"8", "1"}, Copies: 1}}},
		}
		entries := []workload.Entry{{Tenant: 7, Table: "comments", Key: []string{"7", "3"}, Op: workload.OpDelete}}
		s := score.ScoreTenant(7, 0, 100, diffs, entries)
		Expect([]int64{s.Lost, s.Wrong, s.Resurrected, s.Unexpected, s.Duplicated}).To(Equal([]int64{1, 1, 1, 2, 1}))
		Expect(s.Bad()).To(BeEquivalentTo(6))
		Expect(s.Restored()).To(BeEquivalentTo(94))
		Expect(s.Examples).To(ContainElement("missing comments(7,1)"))
	})

	comments := truth.TenantTable{Tenant: 7, Table: fixtures.TableComments}
	key := []string{"7", "3"}
	deleted := func(change func(*workload.Entry)) []workload.Entry {
		e := workload.Entry{Tenant: 7, Table: fixtures.TableComments, Key: key, Op: workload.OpDelete}
		change(&e)
		return []workload.Entry{e}
	}
	DescribeTable("classes one differing row by its kind and, for an extra one, by the ledger",
		func(row truth.RowDiff, entries []workload.Entry, want score.Tenant) {
			got := score.ScoreTenant(7, 1, 100, []truth.TableDiff{{TenantTable: comments, Rows: []truth.RowDiff{row}}}, entries)
			Expect(got.Examples).To(HaveLen(1))
			got.Examples = nil
			want.ID, want.Shard, want.Expected = 7, 1, 100
			Expect(got).To(Equal(want))
		},
		Entry("a missing row is one lost row", truth.RowDiff{Kind: truth.Missing, Key: key, Copies: 1}, nil, score.Tenant{Lost: 1}),
		Entry("a changed row is one wrong row", truth.RowDiff{Kind: truth.Changed, Key: key, Copies: 1}, nil, score.Tenant{Wrong: 1}),
		Entry("every second copy of a key is duplicated", truth.RowDiff{Kind: truth.Duplicated, Key: key, Copies: 3}, nil,
			score.Tenant{Duplicated: 3}),
		Entry("an extra row an acknowledged delete removed is resurrected, every copy", truth.RowDiff{Kind: truth.Extra, Key: key, Copies: 2},
			deleted(func(*workload.Entry) {}), score.Tenant{Resurrected: 2}),
		Entry("an extra row nobody deleted is unexpected", truth.RowDiff{Kind: truth.Extra, Key: key, Copies: 1}, nil,
			score.Tenant{Unexpected: 1}),
		Entry("a delete of unknown outcome resurrects nothing", truth.RowDiff{Kind: truth.Extra, Key: key, Copies: 1},
			deleted(func(e *workload.Entry) { e.Indeterminate = true }), score.Tenant{Unexpected: 1}),
		Entry("nor does another tenant's delete of the same key", truth.RowDiff{Kind: truth.Extra, Key: key, Copies: 1},
			deleted(func(e *workload.Entry) { e.Tenant = 8 }), score.Tenant{Unexpected: 1}),
		Entry("nor a delete of the same key in another table", truth.RowDiff{Kind: truth.Extra, Key: key, Copies: 1},
			deleted(func(e *workload.Entry) { e.Table = fixtures.TableIssues }), score.Tenant{Unexpected: 1}),
		Entry("nor a write of the key that was not a delete", truth.RowDiff{Kind: truth.Extra, Key: key, Copies: 1},
			deleted(func(e *workload.Entry) { e.Op = workload.OpInsert }), score.Tenant{Unexpected: 1}),
	)

	It("scores only the tenant's own tables, adding up the uncertain rows set apart in them", func() {
		other := truth.TenantTable{Tenant: 8, Table: fixtures.TableComments}
		diffs := []truth.TableDiff{
			{TenantTable: comments, Excused: 2, Unresolved: 1, Rows: []truth.RowDiff{{Kind: truth.Missing, Key: key, Copies: 1}}},
			{TenantTable: truth.TenantTable{Tenant: 7, Table: fixtures.TableIssues}, Excused: 3},
			{TenantTable: other, Excused: 5, Unresolved: 5, Rows: []truth.RowDiff{{Kind: truth.Changed, Key: []string{"8", "1"}, Copies: 1}}},
		}
		s := score.ScoreTenant(7, 0, 10, diffs, nil)
		Expect(s).To(Equal(score.Tenant{ID: 7, Expected: 10, Lost: 1, Excused: 2 + 3, Unresolved: 1, Examples: []string{"missing comments(7,3)"}}))
	})

	It("names at most ten differing rows, and counts them all", func() {
		var rows []truth.RowDiff
		for id := range 12 {
			rows = append(rows, truth.RowDiff{Kind: truth.Missing, Key: []string{"7", strconv.Itoa(id + 1)}, Copies: 1})
		}
		s := score.ScoreTenant(7, 0, 100, []truth.TableDiff{{TenantTable: comments, Rows: rows}}, nil)
		Expect(s.Lost).To(BeEquivalentTo(len(rows)))
		Expect(s.Examples).To(HaveLen(10))
		Expect(s.Examples[0]).To(Equal("missing comments(7,1)"))
		Expect(s.Examples[9]).To(Equal("missing comments(7,10)"))
	})

	DescribeTable("counts a tenant's bad rows, and what came back exactly",
		func(t score.Tenant, bad, restored int64, complete bool) {
			Expect(t.Bad()).To(Equal(bad))
			Expect(t.Restored()).To(Equal(restored))
			Expect(t.Complete()).To(Equal(complete))
		},
		Entry("nothing bad: complete", score.Tenant{Expected: 100}, int64(0), int64(100), true),
		Entry("rows of unknown outcome are not bad", score.Tenant{Expected: 100, Excused: 3, Unresolved: 1}, int64(0), int64(100), true),
		Entry("every kind of bad row counts", score.Tenant{Expected: 100, Lost: 1, Wrong: 2, Duplicated: 3, Resurrected: 4, Unexpected: 5},
			int64(1+2+3+4+5), int64(100-(1+2+3+4+5)), false),
		Entry("restored never goes below zero", score.Tenant{Expected: 2, Unexpected: 5}, int64(5), int64(0), false),
	)

	DescribeTable("counts a bystander's harmed rows and says how they differ",
		func(d truth.TableDiff, rows int64, differs string) {
			h := score.Harmed{TableDiff: d}
			Expect(h.Rows()).To(Equal(rows))
			Expect(h.Differs()).To(Equal(differs))
		},
		Entry("missing and changed", truth.TableDiff{Missing: 2, Changed: 1}, int64(3), "2 missing, 1 changed"),
		Entry("extra and duplicated", truth.TableDiff{Extra: 1, Duplicated: 4}, int64(5), "1 extra, 4 duplicated"),
		Entry("uncertain rows are no harm", truth.TableDiff{Excused: 2, Unresolved: 1}, int64(0), ""),
	)
})

var _ = Describe("RPO", func() {
	tt := truth.TenantTable{Tenant: 7, Table: fixtures.TableComments}
	// The baseline holds row 1 of the table only.
	predates := func(t truth.TenantTable, key []string) bool { return t == tt && slices.Equal(key, []string{"7", "1"}) }
	incident := t0.Add(time.Minute)
	write := func(id string, acked time.Duration) workload.Entry {
		return workload.Entry{Tenant: 7, Table: fixtures.TableComments, Key: []string{"7", id}, Op: workload.OpInsert, Acked: t0.Add(acked)}
	}
	indeterminate := func(e workload.Entry) workload.Entry { e.Indeterminate = true; return e }
	inTable := func(table string, e workload.Entry) workload.Entry { e.Table = table; return e }
	diff := func(kind truth.DiffKind, id string) []truth.TableDiff {
		return []truth.TableDiff{{TenantTable: tt, Rows: []truth.RowDiff{{Kind: kind, Key: []string{"7", id}, Copies: 1}}}}
	}
	DescribeTable("dates every loss from the data",
		func(diffs []truth.TableDiff, entries []workload.Entry, want time.Duration) {
			Expect(score.RPO(incident, t0, predates, diffs, entries)).To(Equal(want))
		},
		Entry("nothing lost", nil, nil, time.Duration(0)),
		Entry("a write acknowledged 50 s in, lost", diff(truth.Missing, "900"), []workload.Entry{write("900", 50*time.Second)}, 10*time.Second),
		Entry("a row from before the workload, lost", diff(truth.Missing, "1"), nil, time.Minute),
		Entry("a row written twice dates from its first write", diff(truth.Changed, "900"),
			[]workload.Entry{write("900", 20*time.Second), write("900", 55*time.Second)}, 40*time.Second),
		Entry("an extra row is no loss", diff(truth.Extra, "901"), []workload.Entry{write("901", 50*time.Second)}, time.Duration(0)),
		Entry("a duplicated row is no loss", diff(truth.Duplicated, "900"), []workload.Entry{write("900", 50*time.Second)}, time.Duration(0)),
		Entry("a row from before the workload, lost after it was written, dates from the baseline", diff(truth.Missing, "1"),
			[]workload.Entry{write("1", 50*time.Second)}, incident.Sub(t0)),
		Entry("a wrong row no write explains dates from the baseline", diff(truth.Changed, "1"), nil, incident.Sub(t0)),
		Entry("a write of unknown outcome dates nothing: the first acknowledged one does", diff(truth.Missing, "900"),
			[]workload.Entry{indeterminate(write("900", 10*time.Second)), write("900", 50*time.Second)}, incident.Sub(t0.Add(50*time.Second))),
		Entry("a lost row whose only write is of unknown outcome dates from the baseline", diff(truth.Missing, "900"),
			[]workload.Entry{indeterminate(write("900", 10*time.Second))}, incident.Sub(t0)),
		Entry("a write to the same key of another table dates nothing", diff(truth.Missing, "900"),
			[]workload.Entry{inTable(fixtures.TableIssues, write("900", 50*time.Second))}, incident.Sub(t0)),
		Entry("the oldest of several losses decides", append(diff(truth.Missing, "901"), diff(truth.Changed, "900")...),
			[]workload.Entry{write("900", 30*time.Second), write("901", 50*time.Second)}, incident.Sub(t0.Add(30*time.Second))),
		Entry("a write acknowledged after the incident loses nothing before it", diff(truth.Missing, "902"),
			[]workload.Entry{write("902", 70*time.Second)}, time.Duration(0)),
	)
})
