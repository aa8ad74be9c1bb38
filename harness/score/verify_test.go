package score_test

import (
	"context"
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// verified is a small filled cluster with its baseline, ready to be changed and verified.
type verified struct {
	c    cluster.Cluster
	plan *fixtures.Plan
	f    score.Facts
}

// newVerified fills a one-shard cluster and takes the baseline, tenant victim as the affected one.
func newVerified(ctx context.Context) verified {
	GinkgoHelper()
	c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
	plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 9, Tenants: 3, Rows: 1500}, fixtures.FillOptions{})
	Expect(err).NotTo(HaveOccurred())
	src := dataset.Source(c, plan.Spec.Layout, plan.Model)
	victims := plan.Tenants[:1]
	base, err := score.TakeBaseline(ctx, src, victims)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(base.Close)
	return verified{c: c, plan: plan, f: score.Facts{Plan: plan, Source: src, Baseline: base, Affected: victims}}
}

// insertComment inserts one comment of tenant the way the workload does, and returns the ledger
// entry that says so; indeterminate says the harness lost the acknowledgement.
func (v verified) insertComment(ctx context.Context, tenant int64, id int64, land, indeterminate bool) workload.Entry {
	GinkgoHelper()
	at := workload.Timestamp(time.Now())
	text := func(s string) *string { return &s }
	e := workload.Entry{Tenant: tenant, Shard: 0, Table: fixtures.TableComments, Key: []string{fmt.Sprint(tenant), fmt.Sprint(id)},
		Op: workload.OpInsert, Indeterminate: indeterminate, Sent: at, Acked: at,
		Values: map[string]*string{"tenant_id": text(fmt.Sprint(tenant)), "comment_id": text(fmt.Sprint(id)), "issue_id": text("1"),
			"author_id": text("1"), "body": text("written while the connection broke"), "created_at": text(at.Format(time.RFC3339Nano)),
			"updated_at": text(at.Format(time.RFC3339Nano)), "deleted_at": nil}}
	if land {
		drilltest.Exec(ctx, v.c.Shards()[0].DSN(), fmt.Sprintf(`INSERT INTO comments (tenant_id, comment_id, issue_id, author_id, body, created_at, updated_at)
			VALUES (%d, %d, 1, 1, 'written while the connection broke', '%s', '%s')`, tenant, id, *e.Values["created_at"], *e.Values["updated_at"]))
	}
	return e
}

// loseComment deletes the tenant's first comment, as a restore that missed it would leave it.
func (v verified) loseComment(ctx context.Context, tenant int64) {
	GinkgoHelper()
	drilltest.Exec(ctx, v.c.Shards()[0].DSN(), fmt.Sprintf(`DELETE FROM comments WHERE tenant_id = %d AND comment_id = 1`, tenant))
}

// judge verifies and judges v with the given ledger.
func (v verified) judge(ctx context.Context, ledger []workload.Entry) (*score.Findings, score.Judgement) {
	GinkgoHelper()
	v.f.Ledger = ledger
	found, err := score.Verify(ctx, v.f)
	Expect(err).NotTo(HaveOccurred())
	objs, err := objective.ParseAll([]string{"completeness>=100%", "collateral==0"})
	Expect(err).NotTo(HaveOccurred())
	now := time.Now()
	return found, score.Judge(score.Drill{Baseline: v.f.Baseline, Ledger: ledger, Findings: found,
		Clock: score.Clock{Incident: now, Verified: now}}, objs, score.Ending{})
}

var _ = Describe("a write of unknown outcome", Label(drilltest.Slow), func() {
	DescribeTable("excuses its own row in either state, and nothing else",
		func(ctx context.Context, landed bool) {
			v := newVerified(ctx)
			victim, bystander := v.plan.Tenants[0].ID, v.plan.Tenants[1].ID
			ledger := []workload.Entry{
				v.insertComment(ctx, victim, workload.WorkloadIDBase, landed, true),
				v.insertComment(ctx, bystander, workload.WorkloadIDBase, landed, true),
			}
			By("passing when nothing else differs")
			found, j := v.judge(ctx, ledger)
			Expect(j.Verdict).To(Equal(map[bool]score.Verdict{true: score.PassWithConditions, false: score.Pass}[landed]), j.Reason)
			Expect(found.Collateral).To(BeEmpty())
			Expect(found.Excused).To(BeEquivalentTo(map[bool]int{true: 2, false: 0}[landed]), "the victim's row and the bystander's")

			By("failing a loss in the same tables: an unknown write never sets a table aside")
			v.loseComment(ctx, victim)
			v.loseComment(ctx, bystander)
			found, j = v.judge(ctx, ledger)
			Expect(j.Verdict).To(Equal(score.Fail), j.Reason)
			Expect(found.Affected).To(HaveLen(1))
			Expect(found.Affected[0].Lost).To(BeEquivalentTo(1))
			Expect(found.Collateral).To(ConsistOf(And(HaveField("Table", fixtures.TableComments), HaveField("Missing", BeEquivalentTo(1)))))
			Expect(found.Collateral[0].Rows()).To(BeEquivalentTo(1), "collateral counts rows")
			Expect(j.Measures[objective.Collateral].Number).To(BeEquivalentTo(1))
			Expect(found.Unresolved).To(BeZero())
			Expect(found.Excused).To(BeEquivalentTo(map[bool]int{true: 2, false: 0}[landed]))
		},
		Entry("when it landed", true),
		Entry("when it did not", false),
	)

	It("does not excuse a row in a state it cannot have left", func(ctx context.Context) {
		v := newVerified(ctx)
		victim := v.plan.Tenants[0].ID
		e := v.insertComment(ctx, victim, workload.WorkloadIDBase, true, true)
		drilltest.Exec(ctx, v.c.Shards()[0].DSN(), fmt.Sprintf(`UPDATE comments SET body = 'not what was sent' WHERE tenant_id = %d AND comment_id = %d`,
			victim, workload.WorkloadIDBase))
		found, j := v.judge(ctx, []workload.Entry{e})
		Expect(j.Verdict).To(Equal(score.Fail), j.Reason)
		Expect(found.Affected[0].Unexpected).To(BeEquivalentTo(1))
	})
})

var _ = Describe("what an affected tenant must hold", Label(drilltest.Slow), func() {
	It("is its baseline's rows changed by every acknowledged write, counted without reading the rows back into memory", func(ctx context.Context) {
		v := newVerified(ctx)
		victim := v.plan.Tenants[0].ID
		run, err := workload.Start(ctx, v.c, v.plan, workload.Config{Rate: 400, Seed: 3})
		Expect(err).NotTo(HaveOccurred())
		time.Sleep(time.Second)
		ledger := run.Stop().Entries()
		wrote := 0
		for _, e := range ledger {
			if e.Tenant == victim && !e.Directory() {
				wrote++
			}
		}
		Expect(wrote).To(BeNumerically(">", 20), "the workload wrote to the victim")

		found, j := v.judge(ctx, ledger)
		Expect(j.Verdict).To(Equal(score.Pass), j.Reason)
		// The oracle: the ledger's own fingerprints of what each table must hold, from the
		// baseline's, by every write's change of row count.
		var want int64 = 1 // its directory entry
		for tt, fp := range workload.LedgerOf(ledger).Expected(v.f.Baseline.Snapshot) {
			if tt.Tenant == victim {
				want += fp.Rows
			}
		}
		Expect(found.Affected).To(HaveLen(1))
		Expect(found.Affected[0].Expected).To(Equal(want))
		Expect(found.Affected[0].Restored()).To(Equal(want))
	})
})
