package restore_test

import (
	"context"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

var _ = Describe("logical-export", func() {
	DescribeTable("brings deleted tenants back as of their latest export, losing only what they wrote since",
		func(ctx context.Context, layout fixtures.Layout) {
			d := newDrill(ctx, layout, 2)
			before := d.snapshot(ctx)
			exports := GinkgoT().TempDir()
			older, err := backup.ExportTenants(ctx, d.c, nil, filepath.Join(exports, "1-older"))
			Expect(err).NotTo(HaveOccurred())
			Expect(older.Tenants).To(HaveLen(len(d.plan.Tenants)))

			By("writing to every tenant throughout, exporting every tenant on the way")
			writer := d.write(ctx, workload.Config{Rate: 300, Seed: 5})
			victims := d.victims(2)
			d.awaitWrites(ctx, before, ofVictims(victims), "the victims' latest export differs from their older one")
			latest, err := backup.ExportTenants(ctx, d.c, nil, filepath.Join(exports, "2-latest"))
			Expect(err).NotTo(HaveOccurred())
			_, err = backup.ExportTenants(ctx, d.c, nil, filepath.Join(exports, "2-latest"))
			Expect(err).To(MatchError(ContainSubstring("already holds an export")))
			d.awaitWrites(ctx, d.snapshot(ctx), func(m truth.Mismatch) bool {
				return isVictim(victims, m.Tenant) && m.Table == fixtures.TableComments && m.Got.Rows > m.Want.Rows
			}, "the victims inserted comments after their latest export, which the restore from it loses")

			By("deleting two tenants on each shard")
			rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
			Expect(err).NotTo(HaveOccurred())

			By("restoring them from the exports")
			res, err := restore.LogicalExport{Dir: exports}.Restore(ctx, d.env(), rec)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Strategy).To(Equal("logical-export"))
			Expect(res.Phases).To(ContainElement(And(HaveField("Name", restore.PhaseMerge), HaveField("Shard", 1))))
			Expect(res.Tenants).To(HaveLen(len(victims)))
			for _, r := range res.Tenants {
				t, ok := latest.Tenant(r.ID)
				Expect(ok).To(BeTrue())
				var rows int64
				for _, tt := range t.Tables {
					rows += tt.Rows
				}
				Expect(r.RowsRead).To(Equal(rows), "tenant %d comes from the latest export", r.ID)
				Expect(r.RowsWritten).To(Equal(rows), "into tables the incident emptied")
			}

			d.awaitWrites(ctx, d.snapshot(ctx), ofVictims(victims), "the restored tenants take writes again")
			ledger := writer.Stop()
			differences := ledger.Check(before, d.snapshot(ctx))

			By("finding every other tenant untouched")
			for _, diff := range differences {
				Expect(isVictim(victims, diff.Tenant)).To(BeTrue(), "tenant %d was not harmed, yet %s differs", diff.Tenant, diff.Table)
				Expect(diff.Table).To(BeElementOf(fixtures.TableComments, fixtures.TableIssues), "only what the writer wrote is lost")
			}

			By("finding the victims' writes between the export and the incident lost: the export's RPO")
			lostInserts := map[int64]int{}
			for _, e := range ledger.Entries() {
				t, _ := latest.Tenant(e.Tenant)
				if isVictim(victims, e.Tenant) && e.Op == workload.OpInsert && !e.Indeterminate &&
					e.Sent.After(t.Time) && e.Acked.Before(rec.First()) {
					lostInserts[e.Tenant]++
				}
			}
			Expect(lostInserts).NotTo(BeEmpty(), "victims took writes between the export and the incident")
			for tenant, n := range lostInserts {
				Expect(differences).To(ContainElement(And(HaveField("Tenant", tenant), HaveField("Table", fixtures.TableComments))),
					"tenant %d's %d comments written after its export are lost", tenant, n)
			}
		},
		Entry("shared tables", fixtures.LayoutShared),
		Entry("schema per tenant", fixtures.LayoutSchema),
		Entry("database per tenant", fixtures.LayoutDatabase),
	)

	It("refuses to restore a tenant with no export from before the harm", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 1)
		victims := d.victims(1)
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
		Expect(err).NotTo(HaveOccurred())
		exports := GinkgoT().TempDir()
		_, err = backup.ExportTenants(ctx, d.c, nil, filepath.Join(exports, "after"))
		Expect(err).NotTo(HaveOccurred())
		_, err = restore.LogicalExport{Dir: exports}.Restore(ctx, d.env(), rec)
		Expect(err).To(MatchError(ContainSubstring("no export of it on shard 0 before the harm")))
	})
})
