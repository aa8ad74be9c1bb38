package restore_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

var _ = Describe("full-shard-pitr", func() {
	It("brings the victims back and destroys their neighbours' later writes, which the ledger check detects", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 2)
		before := d.snapshot(ctx)
		writer := d.write(ctx, workload.Config{Rate: 300, Seed: 5})
		var victims []incident.Tenant
		for _, v := range d.victims(2) {
			if v.Shard == 0 {
				victims = append(victims, v)
			}
		}
		onShard0 := map[int64]bool{}
		for _, t := range d.plan.OnShard(0) {
			onShard0[t.ID] = true
		}
		d.awaitWrites(ctx, before, ofVictims(victims), "the victims took writes the rollback must keep")

		By("deleting two tenants on shard 0 only")
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
		Expect(err).NotTo(HaveOccurred())
		harmed := rec.Harms[0].Time
		d.awaitWrites(ctx, d.snapshot(ctx), func(m truth.Mismatch) bool { return onShard0[m.Tenant] && !isVictim(victims, m.Tenant) },
			"the neighbours on shard 0 keep writing after the harm: this is what the rollback destroys")

		By("rolling shard 0 back to just before the harm")
		restoreStart := time.Now()
		res, err := restore.FullShardPITR{}.Restore(ctx, d.env(), rec)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Tenants).To(HaveLen(len(victims)))
		Expect(res.Rows()).To(Equal(rec.Harms[0].Rows), "the victims' rows are back")
		Expect(res.Phases).To(ContainElement(HaveField("Name", restore.PhaseSwap)))
		for _, p := range res.Phases {
			GinkgoWriter.Printf("%s on shard %d: %s\n", p.Name, p.Shard, p.Duration())
		}
		d.awaitWrites(ctx, d.snapshot(ctx), func(m truth.Mismatch) bool { return onShard0[m.Tenant] },
			"shard 0 takes writes again after the rollback")
		ledger := writer.Stop()

		By("finding the collateral: every neighbour on shard 0 that wrote after the harm, no one else")
		lost := map[int64]bool{}
		for _, e := range ledger.Entries() {
			if !e.Indeterminate && e.Shard == 0 && e.Sent.After(harmed) && e.Acked.Before(restoreStart) {
				lost[e.Tenant] = true
			}
		}
		Expect(lost).NotTo(BeEmpty(), "neighbours wrote between the harm and the rollback")
		differences := ledger.Check(before, d.snapshot(ctx))
		flagged := map[int64]bool{}
		for _, diff := range differences {
			Expect(onShard0[diff.Tenant]).To(BeTrue(), "tenant %d on the untouched shard is as its writes left it", diff.Tenant)
			Expect(isVictim(victims, diff.Tenant)).To(BeFalse(), "victim %d is back as it was", diff.Tenant)
			flagged[diff.Tenant] = true
		}
		for tenant := range lost {
			Expect(flagged).To(HaveKey(tenant), "tenant %d lost acknowledged writes", tenant)
		}
		GinkgoWriter.Printf("collateral: %d tables of %d tenants differ\n", len(differences), len(flagged))
	})
})
