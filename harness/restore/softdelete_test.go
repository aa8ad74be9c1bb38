package restore_test

import (
	"context"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/workload"
)

var _ = Describe("soft-delete-undo", func() {
	DescribeTable("clears exactly the marks the incident wrote, resurrecting nothing",
		func(ctx context.Context, layout fixtures.Layout) {
			d := newDrill(ctx, layout, 2)
			victims := d.victims(2)

			By("deleting a victim's issue the application's way, just before the incident")
			v := victims[0]
			issues := pgx.Identifier{layout.Locate(v.ID).Schema, fixtures.TableIssues}.Sanitize()
			drilltest.Exec(ctx, d.c.Shards()[v.Shard].DSNFor(layout.Locate(v.ID).Database),
				"UPDATE "+issues+" SET deleted_at = now() WHERE tenant_id = "+strconv.FormatInt(v.ID, 10)+
					" AND issue_id = (SELECT min(issue_id) FROM "+issues+" WHERE tenant_id = "+strconv.FormatInt(v.ID, 10)+
					" AND deleted_at IS NULL)")
			deletedBefore := d.softDeleted(ctx, victims)
			Expect(len(deletedBefore)).To(BeNumerically(">", len(victims)), "fixtures soft-delete some rows of their own")
			before := d.snapshot(ctx)

			By("inserting for every tenant throughout")
			// Inserts only: an update or delete of a row while the incident's mark is on it hands
			// the ledger a hash with the mark in it, which the undo rightly clears, so the ledger
			// could not predict that row; inserted rows are never marked.
			writer := d.write(ctx, workload.Config{Rate: 300, Seed: 5, Mix: workload.Mix{Insert: 1}})
			d.awaitWrites(ctx, before, ofVictims(victims), "the victims inserted rows the incident then marks")

			By("soft-deleting two tenants on each shard")
			rec, err := incident.SoftDeleteTenants(ctx, d.c, "wrong-id-soft-deletion", victims)
			Expect(err).NotTo(HaveOccurred())
			if layout == fixtures.LayoutDatabase {
				Expect(rec.Harms).To(HaveLen(len(victims)), "one transaction per tenant database")
			} else {
				Expect(rec.Harms).To(HaveLen(2), "one transaction per shard")
			}
			var marked int64
			for _, h := range rec.Harms {
				Expect(h.SoftDeleteMark).NotTo(BeZero())
				Expect(h.Rows).To(BeNumerically(">", 0))
				marked += h.Rows
			}
			d.awaitWrites(ctx, d.snapshot(ctx), ofVictims(victims), "the victims keep taking writes while marked")

			By("undoing the incident's marks")
			res, err := restore.SoftDeleteUndo{}.Restore(ctx, d.env(), rec)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Strategy).To(Equal("soft-delete-undo"))
			Expect(res.Tenants).To(HaveLen(len(victims)))
			Expect(res.Rows()).To(Equal(marked), "every mark cleared, no other")
			for shard := range 2 {
				Expect(res.Phases).To(ContainElement(And(HaveField("Name", restore.PhaseUndo), HaveField("Shard", shard))))
			}

			By("finding the rows deleted before the incident still deleted, as they were")
			Expect(d.softDeleted(ctx, victims)).To(Equal(deletedBefore))

			expectLedgerHolds(ctx, d, writer, before, victims,
				func(e workload.Entry) bool { return e.Acked.After(rec.First()) },
				"victims took writes while marked and after")
		},
		Entry("shared tables", fixtures.LayoutShared),
		Entry("schema per tenant", fixtures.LayoutSchema),
		Entry("database per tenant", fixtures.LayoutDatabase),
	)

	It("refuses an incident that did not soft-delete, before changing anything", func(ctx context.Context) {
		rec := incident.Record{Layout: fixtures.LayoutShared, Affected: []incident.Tenant{{ID: 1001}},
			Harms: []incident.Harm{{Tenants: []int64{1001}, XID: "812"}}}
		_, err := restore.SoftDeleteUndo{}.Restore(ctx, restore.Env{}, rec)
		Expect(err).To(MatchError(ContainSubstring("harm 812 on shard 0 wrote no deletion mark")))
	})
})

// softDeleted returns the tenants' soft-deleted rows, as table(key), with their deletion times.
func (d drill) softDeleted(ctx context.Context, tenants []incident.Tenant) map[string]time.Time {
	GinkgoHelper()
	out := map[string]time.Time{}
	for _, t := range tenants {
		loc := d.plan.Spec.Layout.Locate(t.ID)
		conn := drilltest.Connect(ctx, d.c.Shards()[t.Shard].DSNFor(loc.Database))
		for _, table := range fixtures.Builtin().TenantTables() {
			col := pgx.Identifier{table.SoftDelete}.Sanitize()
			rows, err := conn.Query(ctx, "SELECT $2 || ("+fixtures.ColumnList(table.PrimaryKey)+")::text, "+col+
				" FROM "+pgx.Identifier{loc.Schema, table.Name}.Sanitize()+" WHERE tenant_id = $1 AND "+col+" IS NOT NULL",
				t.ID, table.Name)
			Expect(err).NotTo(HaveOccurred())
			for rows.Next() {
				var key string
				var at time.Time
				Expect(rows.Scan(&key, &at)).To(Succeed())
				out[key] = at
			}
			Expect(rows.Err()).NotTo(HaveOccurred())
		}
	}
	return out
}
