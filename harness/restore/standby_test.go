package restore_test

import (
	"context"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// phaseTime sums the durations of one phase over every shard.
func phaseTime(res restore.Result, name string) time.Duration {
	var d time.Duration
	for _, p := range res.Phases {
		if p.Name == name {
			d += p.Duration()
		}
	}
	return d
}

var _ = Describe("delayed-standby", func() {
	DescribeTable("brings deleted tenants back exactly from a standby held short of the harm, touching no one else",
		func(ctx context.Context, layout fixtures.Layout) {
			d := newDrill(ctx, layout, 2)
			standbys, err := restore.StartStandbys(ctx, d.c, time.Minute)
			Expect(err).NotTo(HaveOccurred())
			before := d.snapshot(ctx)

			By("writing to every tenant throughout")
			writer := d.write(ctx, workload.Config{Rate: 300, Seed: 5})
			victims := d.victims(2)
			d.awaitWrites(ctx, before, ofVictims(victims), "the victims took writes the standby must bring back")

			By("deleting two tenants on each shard")
			rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
			Expect(err).NotTo(HaveOccurred())
			d.awaitWrites(ctx, d.snapshot(ctx), func(m truth.Mismatch) bool { return !isVictim(victims, m.Tenant) },
				"the others keep writing after the harm; the standbys hold it all back")

			By("restoring them from the standbys")
			env := d.env()
			env.Standbys = standbys
			res, err := restore.DelayedStandby{}.Restore(ctx, env, rec)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Tenants).To(HaveLen(len(victims)))
			for _, phase := range []string{restore.PhasePause, restore.PhaseReplay, restore.PhaseMerge} {
				Expect(res.Phases).To(ContainElement(And(HaveField("Name", phase), HaveField("Shard", 1))))
			}
			GinkgoWriter.Printf("%s: pause %s, replay %s, merge %s (summed over shards), %d rows\n", layout,
				phaseTime(res, restore.PhasePause), phaseTime(res, restore.PhaseReplay), phaseTime(res, restore.PhaseMerge), res.Rows())

			expectLedgerHolds(ctx, d, writer, before, victims,
				func(e workload.Entry) bool { return e.Acked.Before(rec.First()) },
				"victims had writes the standby must bring back")
		},
		Entry("shared tables", fixtures.LayoutShared),
		Entry("schema per tenant", fixtures.LayoutSchema),
		Entry("database per tenant", fixtures.LayoutDatabase),
	)

	It("fails, naming the reason, when the standby's delay ran out before the restore", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 1)
		standbys, err := restore.StartStandbys(ctx, d.c, 0)
		Expect(err).NotTo(HaveOccurred())
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", d.victims(1))
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int64 {
			return countVictimRows(ctx, standbys[0], rec)
		}).Should(BeZero(), "a standby without delay applies the harm")
		env := d.env()
		env.Standbys = standbys
		_, err = restore.DelayedStandby{}.Restore(ctx, env, rec)
		Expect(err).To(MatchError(cluster.ErrPastTarget))
	})
})

// countVictimRows counts the affected tenants' sites on a server (shared layout).
func countVictimRows(ctx context.Context, s cluster.Server, rec incident.Record) int64 {
	GinkgoHelper()
	var ids []int64
	for _, t := range rec.Affected {
		ids = append(ids, t.ID)
	}
	var n int64
	conn := drilltest.Connect(ctx, s.DSN())
	Expect(conn.QueryRow(ctx, "SELECT count(*) FROM sites WHERE tenant_id = ANY($1)", ids).Scan(&n)).To(Succeed())
	return n
}
