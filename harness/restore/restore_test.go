package restore_test

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/workload"
)

var _ = Describe("pitr-sidecar", func() {
	DescribeTable("brings deleted tenants back exactly, touching no one else",
		func(ctx context.Context, layout fixtures.Layout) {
			d := newDrill(ctx, layout, 2)
			before := d.snapshot(ctx)

			By("writing to every tenant throughout")
			writer := d.write(ctx, workload.Config{Rate: 300, Seed: 5})
			victims := d.victims(2)
			d.awaitWrites(ctx, before, ofVictims(victims), "the victims took writes between the backup and the incident")

			By("deleting two tenants on each shard")
			rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
			Expect(err).NotTo(HaveOccurred())
			Expect(rec.Harms).NotTo(BeEmpty())
			var deleted int64
			for _, h := range rec.Harms {
				Expect(h.XID).NotTo(BeEmpty())
				deleted += h.Rows
			}
			for k, f := range d.snapshot(ctx).Tables() {
				if isVictim(victims, k.Tenant) {
					Expect(f.Rows).To(BeZero(), "%d's %s is gone", k.Tenant, k.Table)
				}
			}

			By("restoring them from a sidecar")
			res, err := restore.PITRSidecar{}.Restore(ctx, d.env(), rec)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Tenants).To(HaveLen(len(victims)))
			if layout == fixtures.LayoutDatabase {
				// DROP DATABASE cannot share a transaction with the count before it, and the
				// writer keeps writing in between; the ledger check below is the exact one.
				Expect(res.Rows()).To(BeNumerically("~", deleted, 20))
			} else {
				Expect(res.Rows()).To(Equal(deleted), "every deleted row, no more")
			}
			for _, phase := range []string{restore.PhaseArchive, restore.PhaseProvision, restore.PhaseReplay, restore.PhaseMerge} {
				Expect(res.Phases).To(ContainElement(And(HaveField("Name", phase), HaveField("Shard", 1))))
			}

			ledger := expectLedgerHolds(ctx, d, writer, before, victims,
				func(e workload.Entry) bool { return e.Acked.Before(rec.First()) },
				"victims had writes between backup and incident")
			Expect(ledger.Acknowledged()).To(BeNumerically(">", 100))
		},
		Entry("shared tables", fixtures.LayoutShared),
		Entry("schema per tenant", fixtures.LayoutSchema),
		Entry("database per tenant", fixtures.LayoutDatabase),
	)
})
