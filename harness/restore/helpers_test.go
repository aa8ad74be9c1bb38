package restore_test

import (
	"context"
	"log/slog"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// drill is a filled, protected cluster ready to be harmed.
type drill struct {
	c    cluster.Cluster
	plan *fixtures.Plan
	prot backup.Protection
	src  truth.Source
}

func newDrill(ctx context.Context, layout fixtures.Layout, shards int) drill {
	GinkgoHelper()
	return newDrillOn(ctx, layout, cluster.Spec{Shards: shards})
}

// newDrillOn is newDrill on a cluster of the given spec (a backup engine, say).
func newDrillOn(ctx context.Context, layout fixtures.Layout, spec cluster.Spec) drill {
	GinkgoHelper()
	c := drilltest.StartCluster(ctx, provider, spec)
	plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 11, Tenants: 16, Rows: 8000, Layout: layout}, fixtures.FillOptions{})
	Expect(err).NotTo(HaveOccurred())
	prot, err := backup.Protect(ctx, c, "drill")
	Expect(err).NotTo(HaveOccurred())
	return drill{c: c, plan: plan, prot: prot, src: dataset.Source(c, layout, fixtures.Builtin())}
}

func (d drill) snapshot(ctx context.Context) *truth.Snapshot {
	GinkgoHelper()
	s, err := truth.Take(ctx, d.src)
	Expect(err).NotTo(HaveOccurred())
	return s
}

// victims picks n tenants on every shard.
func (d drill) victims(n int) []incident.Tenant {
	var out []incident.Tenant
	for shard := range d.c.Shards() {
		for _, t := range d.plan.OnShard(shard)[:n] {
			out = append(out, incident.Tenant{ID: t.ID, Shard: t.Shard})
		}
	}
	return out
}

// write starts a workload on every tenant, stopped when the spec ends at the latest.
func (d drill) write(ctx context.Context, cfg workload.Config) *workload.Runner {
	GinkgoHelper()
	w, err := workload.Start(ctx, d.c, d.plan, cfg)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { w.Stop() })
	return w
}

// isVictim reports whether tenant id is one of victims.
func isVictim(victims []incident.Tenant, id int64) bool {
	return slices.ContainsFunc(victims, func(v incident.Tenant) bool { return v.ID == id })
}

// ofVictims matches the tables of victims, for awaitWrites.
func ofVictims(victims []incident.Tenant) func(truth.Mismatch) bool {
	return func(m truth.Mismatch) bool { return isVictim(victims, m.Tenant) }
}

// awaitWrites waits until a table that match accepts differs from the snapshot since: until the
// workload has written what the spec needs written before it goes on, observed on the servers
// rather than slept for, so that a slow machine waits longer instead of testing nothing. why says
// what the wait is for.
func (d drill) awaitWrites(ctx context.Context, since *truth.Snapshot, match func(truth.Mismatch) bool, why string) {
	GinkgoHelper()
	Eventually(func() bool {
		return slices.ContainsFunc(truth.Compare(since, d.snapshot(ctx)), match)
	}).WithTimeout(30*time.Second).WithPolling(20*time.Millisecond).Should(BeTrue(), why)
}

// env is what a strategy restoring d works with.
func (d drill) env() restore.Env {
	return restore.Env{Cluster: d.c, Protection: d.prot, Log: slog.Default()}
}

// expectLedgerHolds stops w, once the restored tenants have taken writes again, and expects every
// tenant of d to hold exactly what its acknowledged writes say, starting from before: no
// difference, writes of unknown outcome included. The victims must first have acknowledged writes that wrote
// picks (those the restore has to bring back or keep), or the check would prove nothing about
// them; why says which those are. It returns the ledger, for the spec's own checks.
func expectLedgerHolds(ctx context.Context, d drill, w *workload.Runner, before *truth.Snapshot,
	victims []incident.Tenant, wrote func(workload.Entry) bool, why string) *workload.Ledger {
	GinkgoHelper()
	d.awaitWrites(ctx, d.snapshot(ctx), ofVictims(victims), "the restored tenants take writes again")
	ledger := w.Stop()
	Expect(slices.ContainsFunc(ledger.Entries(), func(e workload.Entry) bool {
		return isVictim(victims, e.Tenant) && wrote(e)
	})).To(BeTrue(), why)

	By("comparing every tenant with what its acknowledged writes say it must hold")
	Expect(ledger.Check(before, d.snapshot(ctx))).To(BeEmpty())
	return ledger
}

// runbookDrill is a one-shard cluster, removed after the suite, and an incident record of one
// tenant on it: what a runbook spec restores against.
func runbookDrill(ctx context.Context) (restore.Env, incident.Record) {
	GinkgoHelper()
	c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
	return restore.Env{Cluster: c, Log: drilltest.DiscardLogger()},
		incident.Record{Kind: "test", RunID: c.RunID(), Layout: fixtures.LayoutShared, Affected: []incident.Tenant{{ID: 1001, Shard: 0}}}
}
