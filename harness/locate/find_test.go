package locate_test

import (
	"context"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	. "github.com/onsi/gomega/gstruct"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
)

var _ = Describe("finding the harm from a ticket", Label(drilltest.Slow), func() {
	for _, layout := range fixtures.Layouts() {
		It("finds all 6 victims of a script run as 6 transactions on 2 shards from a ticket naming 1, and not the tenants whose rows were deleted legitimately meanwhile: "+string(layout), func(ctx context.Context) {
			c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
			m := fixtures.Builtin()
			plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 5, Tenants: 16, Rows: 6000, Layout: layout}, fixtures.FillOptions{})
			Expect(err).NotTo(HaveOccurred())
			prot, err := backup.Protect(ctx, c, "locate")
			Expect(err).NotTo(HaveOccurred())
			var victims []incident.Tenant
			var bystanders []fixtures.Tenant
			for shard := range 2 {
				tenants := plan.OnShard(shard)
				for _, t := range tenants[:3] {
					victims = append(victims, incident.Tenant{ID: t.ID, Shard: shard})
				}
				bystanders = append(bystanders, tenants[3:5]...)
			}
			from := time.Now().Add(-time.Second)

			By("deleting one comment of each of 3 other tenants, legitimately, between the script's transactions")
			comments, ok := m.LookupTable("comments")
			Expect(ok).To(BeTrue())
			deleteOne := func(t fixtures.Tenant) {
				id := t.ID
				loc := layout.Locate(id)
				conn := drilltest.Connect(ctx, c.Shards()[t.Shard].DSNFor(loc.Database))
				schema := loc.Schema
				cond, err := m.OwnerCondition(comments, schema, "c", "= $1")
				Expect(err).NotTo(HaveOccurred())
				table := pgx.Identifier{schema, "comments"}.Sanitize()
				tag, err := conn.Exec(ctx, "DELETE FROM "+table+" WHERE ctid = (SELECT c.ctid FROM "+table+" c WHERE "+cond+" LIMIT 1)", id)
				Expect(err).NotTo(HaveOccurred())
				Expect(tag.RowsAffected()).To(BeEquivalentTo(1))
			}
			By("deleting one comment of the reported tenant itself before the script: its own write, not the harm")
			reported := victims[2]
			deleteOne(fixtures.Tenant{ID: reported.ID, Shard: reported.Shard})
			first := map[int]incident.Harm{} // the script's first transaction, by shard
			for i, v := range victims {
				if i < len(bystanders) {
					deleteOne(bystanders[i])
				}
				rec, err := incident.DeleteTenants(ctx, c, "wrong-id-deletion", []incident.Tenant{v})
				Expect(err).NotTo(HaveOccurred())
				if _, ok := first[v.Shard]; !ok {
					first[v.Shard] = rec.Harms[0]
				}
			}
			to := time.Now().Add(time.Second)

			found, err := locate.Find(ctx, c, prot.Backups, m, incident.Ticket{Tenants: []int64{reported.ID}, From: from, To: to})
			Expect(err).NotTo(HaveOccurred())
			Expect(found).To(HaveLen(2))
			var want, got []int64
			for _, v := range victims {
				want = append(want, v.ID)
			}
			var confidence []string
			considered := 0
			for shard, f := range found {
				Expect(f.Shard).To(Equal(shard))
				got = append(got, f.Victims()...)
				Expect(f.Harms).To(HaveLen(3))
				for _, h := range f.Harms {
					confidence = append(confidence, h.Confidence)
				}
				considered += f.Considered
				Expect(f.RecoverTo).To(Equal(f.Harms[0].RecoverTo()))
				if want := first[shard].RecoverTo; want.XID != "" {
					Expect(f.RecoverTo.XID).To(Equal(want.XID), "just before the script's first transaction on shard %d", shard)
				} else { // a DROP DATABASE: just before its first WAL record, after everything before it
					at, lo, hi := lsn(f.RecoverTo.LSN), lsn(want.LSN), lsn(first[shard].CommitLSN)
					Expect(at >= lo && at < hi).To(BeTrue(), "%s in [%s, %s)", at, lo, hi)
				}
			}
			slices.Sort(want)
			slices.Sort(got)
			Expect(got).To(Equal(want), "every victim on both shards, the 5 no ticket names included, and no bystander")
			Expect(considered).To(BeNumerically(">=", 10), "the bystanders' deletes were considered, and judged no harm")
			Expect(confidence).To(ConsistOf("reported", "pattern", "pattern", "pattern", "pattern", "pattern"))
		})
	}

	It("finds a script that deleted 6 tenants table by table, in batches, as 50 small transactions, from a ticket naming 2", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
		m := fixtures.Builtin()
		layout := fixtures.LayoutShared
		plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 8, Tenants: 16, Rows: 6000, Layout: layout}, fixtures.FillOptions{})
		Expect(err).NotTo(HaveOccurred())
		prot, err := backup.Protect(ctx, c, "locate")
		Expect(err).NotTo(HaveOccurred())
		from := time.Now().Add(-time.Second)
		type step struct {
			tenant fixtures.Tenant
			table  fixtures.Table
			half   bool // the first of two batches
		}
		tables := m.TenantTables()
		slices.Reverse(tables) // children first, as the foreign keys want
		var victims []fixtures.Tenant
		for shard := range 2 {
			victims = append(victims, plan.OnShard(shard)[:3]...)
		}
		var steps []step
		for _, v := range victims {
			for _, t := range tables {
				steps = append(steps, step{tenant: v, table: t})
			}
		}
		const script = 50
		Expect(len(steps)).To(BeNumerically("<", script))
		for i := 0; len(steps) < script; i++ { // the biggest tables of the first victims go in two batches
			if steps[i].table.Name == "comments" || steps[i].table.Name == "issues" {
				steps = slices.Insert(steps, i, step{tenant: steps[i].tenant, table: steps[i].table, half: true})
				i++
			}
		}
		first := map[int]string{} // the script's first transaction, by shard
		batches := 0              // the script's transactions that deleted more than one row, or a tenant's root row
		for _, st := range steps {
			loc := layout.Locate(st.tenant.ID)
			conn := drilltest.Connect(ctx, c.Shards()[st.tenant.Shard].DSNFor(loc.Database))
			cond, err := m.OwnerCondition(st.table, loc.Schema, "r", "= $1")
			Expect(err).NotTo(HaveOccurred())
			table := pgx.Identifier{loc.Schema, st.table.Name}.Sanitize()
			where := "r.ctid IN (SELECT r.ctid FROM " + table + " r WHERE " + cond + ")"
			if st.half {
				where = "r.ctid IN (SELECT r.ctid FROM " + table + " r WHERE " + cond + " LIMIT (SELECT count(*) / 2 FROM " + table + " r WHERE " + cond + "))"
			}
			var xid string
			Expect(pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
				if err := tx.QueryRow(ctx, "SELECT pg_current_xact_id()::text").Scan(&xid); err != nil {
					return err
				}
				tag, err := tx.Exec(ctx, "DELETE FROM "+table+" r WHERE "+where, st.tenant.ID)
				if n := tag.RowsAffected(); n >= 2 || n == 1 && st.table.Name == m.RootTable().Name {
					batches++
				}
				return err
			})).To(Succeed())
			if _, ok := first[st.tenant.Shard]; !ok {
				first[st.tenant.Shard] = xid
			}
		}
		reported := []int64{victims[1].ID, victims[4].ID}

		found, err := locate.Find(ctx, c, prot.Backups, m, incident.Ticket{Tenants: reported, From: from, To: time.Now().Add(time.Second)})
		Expect(err).NotTo(HaveOccurred())
		var want, got []int64
		for _, v := range victims {
			want = append(want, v.ID)
		}
		harms := 0
		for shard, f := range found {
			got = append(got, f.Victims()...)
			harms += len(f.Harms)
			Expect(f.RecoverTo.XID).To(Equal(first[shard]), "just before the script's first batch on shard %d", shard)
		}
		slices.Sort(got)
		slices.Sort(want)
		Expect(got).To(Equal(want), "every victim, the 4 no ticket names included")
		Expect(batches).To(BeNumerically(">", script/2))
		Expect(harms).To(Equal(batches), "every transaction of the script that deleted rows in bulk or wiped a tenant; one that deleted a tenant's one row of another table looks like the tenant's own write, and its tenant is a victim anyway")
	})

	// Each harm that changes rows without removing them, on one shard of two, found from a ticket
	// naming one of its victims: what it did to which column, every victim, the true target.
	type overwrite struct {
		what  string
		every bool // the harm is DDL on a shared table: every tenant of the shard
		harm  func(ctx context.Context, c cluster.Cluster, victims []incident.Tenant) (incident.Record, error)
		check func(got locate.Harm, want incident.Harm)
	}
	overwrites := []overwrite{
		{"a soft delete of 3 tenants: the mark it wrote", false, func(ctx context.Context, c cluster.Cluster, v []incident.Tenant) (incident.Record, error) {
			return incident.SoftDeleteTenants(ctx, c, "wrong-id-soft-delete", v)
		}, func(got locate.Harm, want incident.Harm) {
			Expect(got.SoftDeleteMark).To(BeTemporally("==", want.SoftDeleteMark))
			Expect(got.Column).To(BeNil())
		}},
		{"an UPDATE without its WHERE of 1 tenant's issues: the column and the value", false, func(ctx context.Context, c cluster.Cluster, v []incident.Tenant) (incident.Record, error) {
			return incident.OverwriteColumn(ctx, c, "update-without-where", v[:1], "issues", "summary")
		}, func(got locate.Harm, want incident.Harm) {
			Expect(got.Column).NotTo(BeNil())
			Expect(*got.Column).To(MatchFields(IgnoreExtras, Fields{"Table": Equal("issues"), "Column": Equal("summary"), "Dropped": BeFalse(),
				"Value": Equal(want.Column.Value)}))
		}},
		{"a migration dropping a column of every tenant's table: which column", true, func(ctx context.Context, c cluster.Cluster, v []incident.Tenant) (incident.Record, error) {
			return incident.DropColumn(ctx, c, "bad-migration", v, "issues", "description")
		}, func(got locate.Harm, want incident.Harm) {
			Expect(got.Column).NotTo(BeNil())
			Expect(*got.Column).To(MatchFields(IgnoreExtras, Fields{"Table": Equal("issues"), "Column": Equal("description"), "Dropped": BeTrue()}))
		}},
	}
	for _, o := range overwrites {
		It("finds "+o.what, func(ctx context.Context) {
			c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
			m := fixtures.Builtin()
			plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 9, Tenants: 12, Rows: 4000}, fixtures.FillOptions{})
			Expect(err).NotTo(HaveOccurred())
			prot, err := backup.Protect(ctx, c, "locate")
			Expect(err).NotTo(HaveOccurred())
			from := time.Now().Add(-time.Second)
			var victims []incident.Tenant
			on := plan.OnShard(1)
			if !o.every {
				on = on[:3]
			}
			for _, t := range on {
				victims = append(victims, incident.Tenant{ID: t.ID, Shard: 1})
			}
			rec, err := o.harm(ctx, c, victims)
			Expect(err).NotTo(HaveOccurred())
			Expect(rec.Harms).To(HaveLen(1))

			found, err := locate.Find(ctx, c, prot.Backups, m, incident.Ticket{Tenants: []int64{rec.Affected[0].ID}, From: from, To: time.Now().Add(time.Second)})
			Expect(err).NotTo(HaveOccurred())
			Expect(found[0].Harms).To(BeEmpty())
			Expect(found[1].Harms).To(HaveLen(1))
			var want []int64
			for _, t := range rec.Affected {
				want = append(want, t.ID)
			}
			Expect(found[1].Victims()).To(ConsistOf(want))
			Expect(found[1].RecoverTo).To(Equal(rec.Harms[0].RecoverTo))
			o.check(found[1].Harms[0], rec.Harms[0])
		})
	}
})

// lsn parses a WAL position.
func lsn(s string) backup.LSN {
	GinkgoHelper()
	l, err := backup.ParseLSN(s)
	Expect(err).NotTo(HaveOccurred())
	return l
}
