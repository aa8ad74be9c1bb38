package score_test

import (
	"errors"
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
	)

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
		},
		Entry("collateral<=5 tolerates 3 rows, as a condition", objectives("collateral<=5"), int64(0), int64(3),
			score.PassWithConditions, "3 row(s) of 1 unaffected tenant(s) differ from what their own writes say they must hold, within the objectives"),
		Entry("collateral<=5 fails 6 rows", objectives("collateral<=5"), int64(0), int64(6), score.Fail, "collateral was 6 rows"),
		Entry("collateral nothing bounds fails", objectives("rto<=2m"), int64(0), int64(1), score.Fail, "unaffected tenant(s) differ"),
		Entry("completeness>=99% tolerates 5 lost rows of 500", objectives("completeness>=99%"), int64(5), int64(0),
			score.PassWithConditions, "within the objectives"),
		Entry("lost_rows<=2 fails 5 lost rows", objectives("lost_rows<=2"), int64(5), int64(0), score.Fail, "lost_rows was 5 rows"),
		Entry("a loss nothing bounds fails", objectives("rto<=2m"), int64(1), int64(0), score.Fail, "not as they must be"),
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
})

var _ = Describe("RPO", func() {
	tt := truth.TenantTable{Tenant: 7, Table: fixtures.TableComments}
	base := score.Baseline{Taken: t0, Rows: map[truth.TenantTable][]truth.RowHash{tt: {{Key: []string{"7", "1"}, Hash: 5}}}}
	incident := t0.Add(time.Minute)
	write := func(id string, acked time.Duration) workload.Entry {
		return workload.Entry{Tenant: 7, Table: fixtures.TableComments, Key: []string{"7", id}, Op: workload.OpInsert, Acked: t0.Add(acked)}
	}
	diff := func(kind truth.DiffKind, id string) []truth.TableDiff {
		return []truth.TableDiff{{TenantTable: tt, Rows: []truth.RowDiff{{Kind: kind, Key: []string{"7", id}, Copies: 1}}}}
	}
	DescribeTable("dates every loss from the data",
		func(diffs []truth.TableDiff, entries []workload.Entry, want time.Duration) {
			Expect(score.RPO(incident, base, diffs, entries)).To(Equal(want))
		},
		Entry("nothing lost", nil, nil, time.Duration(0)),
		Entry("a write acknowledged 50 s in, lost", diff(truth.Missing, "900"), []workload.Entry{write("900", 50*time.Second)}, 10*time.Second),
		Entry("a row from before the workload, lost", diff(truth.Missing, "1"), nil, time.Minute),
		Entry("a row written twice dates from its first write", diff(truth.Changed, "900"),
			[]workload.Entry{write("900", 20*time.Second), write("900", 55*time.Second)}, 40*time.Second),
		Entry("an extra row is no loss", diff(truth.Extra, "901"), []workload.Entry{write("901", 50*time.Second)}, time.Duration(0)),
	)
})
