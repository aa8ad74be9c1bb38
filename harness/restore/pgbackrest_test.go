package restore_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/workload"
)

var _ = Describe("pgbackrest-sidecar", Label(drilltest.Slow), func() {
	It("brings deleted tenants back exactly from pgBackRest's restore, touching no one else", func(ctx context.Context) {
		drilltest.NeedTool("pgbackrest", "apt-get install pgbackrest", "no tenant was restored by pgBackRest")
		d := newDrillOn(ctx, fixtures.LayoutShared, cluster.Spec{Shards: 2, Engine: cluster.EnginePgBackRest})
		c, prot := d.c, d.prot
		Expect(prot.Backups[0].Engine).To(Equal(cluster.EnginePgBackRest))
		before := d.snapshot(ctx)

		By("checking the chain through pgBackRest's repository")
		chain, err := backup.VerifyChain(ctx, c, prot, nil)
		Expect(err).NotTo(HaveOccurred())
		for _, r := range chain {
			Expect(r.Whole()).To(BeTrue(), r.Problem())
		}

		writer := d.write(ctx, workload.Config{Rate: 300, Seed: 5})
		victims := d.victims(2)
		d.awaitWrites(ctx, before, ofVictims(victims), "the victims took writes between the backup and the incident")
		rec, err := incident.DeleteTenants(ctx, c, "wrong-id-deletion", victims)
		Expect(err).NotTo(HaveOccurred())

		By("restoring them from pgBackRest")
		res, err := restore.PgBackRestSidecar{}.Restore(ctx, d.env(), rec)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Strategy).To(Equal("pgbackrest-sidecar"))
		Expect(res.Tenants).To(HaveLen(len(victims)))
		GinkgoWriter.Printf("provision %s, replay %s, merge %s (summed over shards)\n",
			phaseTime(res, restore.PhaseProvision), phaseTime(res, restore.PhaseReplay), phaseTime(res, restore.PhaseMerge))

		d.awaitWrites(ctx, d.snapshot(ctx), ofVictims(victims), "the restored tenants take writes again")
		ledger := writer.Stop()
		Expect(ledger.Check(before, d.snapshot(ctx))).To(BeEmpty())
	})

	It("refuses backups another engine took", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 1)
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", d.victims(1))
		Expect(err).NotTo(HaveOccurred())
		_, err = restore.PgBackRestSidecar{}.Restore(ctx, d.env(), rec)
		Expect(err).To(MatchError(ContainSubstring("protect the cluster with the pgbackrest engine")))
	})
})
