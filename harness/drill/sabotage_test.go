package drill_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/workload"
	"github.com/pgdrill/pgdrill/scenarios"
)

// The sabotage specs keep the scorer honest. Each plugs a runbook into a real drill — the real
// incident, workload, verification and scoring run — and the runbook restores badly on purpose:
// every sabotage must FAIL for the right reason, and a correct restore must PASS.
//
// The runbook is this test binary again (TestSabotageRunbook), told what to do by
// PGDRILL_SABOTAGE: it restores with the real `pgdrill restore` and then does its damage.

const sabotageEnv = "PGDRILL_SABOTAGE"

func sabotageScenario(seed int) *scenarios.Scenario {
	GinkgoHelper()
	sc := smallScenario("shared", seed)
	sc.Spec.Restore.Strategy = scenarios.RunbookStrategy
	sc.Spec.Restore.Runbook = &scenarios.Runbook{
		Command: fmt.Sprintf("%q -test.run='^TestSabotageRunbook$' -test.count=1", os.Args[0]),
		Timeout: scenarios.Duration(2 * time.Minute),
	}
	return sc
}

// drillWith runs a drill whose runbook does the given sabotage.
func drillWith(ctx context.Context, sabotage string, seed int) *drill.Outcome {
	GinkgoHelper()
	GinkgoT().Setenv(sabotageEnv, sabotage)
	GinkgoT().Setenv("PGDRILL_BIN", pgdrillBin)
	GinkgoT().Setenv("PGDRILL_STATE_DIR", provider.Store().Dir()) // the runbook attaches through it
	return drill.Run(ctx, drill.Config{Scenario: sabotageScenario(seed), Provider: provider, Log: drilltest.DiscardLogger()})
}

var _ = Describe("the scorer, against sabotaged restores", Label(drilltest.Slow), func() {
	DescribeTable("passes a correct restore", func(ctx context.Context, seed int) {
		out := drillWith(ctx, "correct", seed)
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason+"\n"+runbookOutput(out))
	}, Entry("seed 11", 11), Entry("seed 12", 12), Entry("seed 13", 13))

	DescribeTable("fails a sabotaged one, for the right reason",
		func(ctx context.Context, sabotage string, check func(*drill.Outcome)) {
			out := drillWith(ctx, sabotage, 21)
			Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
			Expect(out.Affected).NotTo(BeEmpty(), "the drill verified: %s\n%s", out.Reason, runbookOutput(out))
			check(out)
		},
		Entry("that does nothing", "nothing", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeNumerically(">", 100))
			Expect(o.Reason).To(ContainSubstring("affected tenants are not as they must be"))
		}),
		Entry("that misses one row of one tenant", "miss-row", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeEquivalentTo(1))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeZero())
			Expect(o.Collateral).To(BeEmpty())
		}),
		Entry("that changes one cell", "change-cell", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeEquivalentTo(1))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeZero())
		}),
		Entry("that duplicates a row", "duplicate-row", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Duplicated })).To(BeEquivalentTo(1))
			Expect(o.Integrity).To(ContainElement(And(HaveField("Name", "schema"), HaveField("Passed", false))))
		}),
		Entry("that restores unaffected tenants over their newer writes", "overwrite-bystanders", func(o *drill.Outcome) {
			Expect(o.Collateral).NotTo(BeEmpty())
			Expect(o.Reason).To(ContainSubstring("unaffected tenant(s) differ"))
		}),
		Entry("that loses one acknowledged write of an unaffected tenant", "lose-bystander-write", func(o *drill.Outcome) {
			Expect(o.Collateral).To(HaveLen(1))
			Expect(o.Collateral[0].Missing).To(BeEquivalentTo(1))
			Expect(o.Collateral[0].Rows()).To(BeEquivalentTo(1))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeZero())
		}),
	)
})

// runbookOutput is what the runbook printed, for failure messages.
func runbookOutput(o *drill.Outcome) string {
	if o.Restore == nil {
		return ""
	}
	return o.Restore.Output
}

func sum(o *drill.Outcome, f func(score.Tenant) int64) int64 {
	var n int64
	for _, t := range o.Affected {
		n += f(t)
	}
	return n
}

// TestSabotageRunbook is the runbook the sabotage specs plug in; it does nothing in a normal test
// run.
func TestSabotageRunbook(t *testing.T) {
	mode := os.Getenv(sabotageEnv)
	if mode == "" || os.Getenv(restore.IncidentFileEnv) == "" {
		t.Skip("only run as a drill's runbook")
	}
	ctx := context.Background()
	f, err := restore.ReadIncidentFile(os.Getenv(restore.IncidentFileEnv))
	if err != nil {
		t.Fatal(err)
	}
	if mode == "nothing" {
		return
	}
	if mode == "overwrite-bystanders" {
		overwriteBystanders(t, ctx, f)
		return
	}
	if out, err := exec.Command(os.Getenv("PGDRILL_BIN"), "restore", "--strategy", "pitr-sidecar").CombinedOutput(); err != nil {
		t.Fatalf("pgdrill restore: %v: %s", err, out)
	}
	victim := f.Affected[0]
	shard := f.Shards[victim.Shard].DSN
	run := func(sql string, args ...any) {
		conn, err := pgx.Connect(ctx, shard)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	switch mode {
	case "correct":
	case "miss-row":
		run(`DELETE FROM comments WHERE (tenant_id, comment_id) = (SELECT tenant_id, min(comment_id) FROM comments WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "change-cell":
		run(`UPDATE users SET email = 'sabotage@example.invalid' WHERE (tenant_id, user_id) = (SELECT tenant_id, min(user_id) FROM users WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "duplicate-row":
		run(`ALTER TABLE comments DROP CONSTRAINT comments_pkey CASCADE`)
		run(`INSERT INTO comments SELECT * FROM comments WHERE (tenant_id, comment_id) = (SELECT tenant_id, min(comment_id) FROM comments WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "lose-bystander-write":
		loseBystanderWrite(t, ctx, f)
	default:
		t.Fatalf("unknown sabotage %q", mode)
	}
}

// overwriteBystanders restores the victims and, with them, every unaffected tenant of their shards
// from the sidecar, preferring the backup's rows: the tenants' writes since the incident are lost.
func overwriteBystanders(t *testing.T, ctx context.Context, f restore.IncidentFile) {
	time.Sleep(time.Second) // let the workload write to the bystanders after the incident
	rec := f.Record()
	catalog, err := pgx.Connect(ctx, f.Catalog.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close(ctx)
	tenants, err := fixtures.ReadTenants(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range tenants {
		if slices.ContainsFunc(rec.Harms, func(h incident.Harm) bool { return h.Shard == ct.Shard }) &&
			!slices.ContainsFunc(rec.Affected, func(a incident.Tenant) bool { return a.ID == ct.ID }) {
			rec.Affected = append(rec.Affected, incident.Tenant{ID: ct.ID, Shard: ct.Shard})
			for i := range rec.Harms {
				if rec.Harms[i].Shard == ct.Shard {
					rec.Harms[i].Tenants = append(rec.Harms[i].Tenants, ct.ID)
				}
			}
		}
	}
	p, err := local.New(ctx, local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Attach(ctx, f.RunID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	_, err = restore.PITRSidecar{Policy: restore.PreferBackup}.Restore(ctx,
		restore.Env{Cluster: c, Protection: f.Protection(), Log: drilltest.DiscardLogger()}, rec)
	if err != nil {
		t.Fatal(err)
	}
}

// loseBystanderWrite deletes one comment the workload inserted into an unaffected tenant: one
// acknowledged write gone.
func loseBystanderWrite(t *testing.T, ctx context.Context, f restore.IncidentFile) {
	for _, s := range f.Shards {
		conn, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, a := range f.Affected {
			ids = append(ids, a.ID)
		}
		tag, err := conn.Exec(ctx, `DELETE FROM comments WHERE (tenant_id, comment_id) = (
			SELECT tenant_id, comment_id FROM comments WHERE comment_id >= $1 AND NOT tenant_id = ANY($2)
			ORDER BY tenant_id, comment_id LIMIT 1)`, int64(workload.WorkloadIDBase), ids)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() == 1 {
			return
		}
	}
	t.Fatal("no workload write of an unaffected tenant to lose")
}
