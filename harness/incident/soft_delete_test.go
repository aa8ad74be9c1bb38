package incident_test

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/truth"
)

var _ = Describe("SoftDeleteTenants", func() {
	DescribeTable("marks every live row of the tenants, records the mark, and touches nothing else",
		func(ctx context.Context, layout fixtures.Layout) {
			c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
			plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 3, Tenants: 8, Rows: 3000, Layout: layout}, fixtures.FillOptions{})
			Expect(err).NotTo(HaveOccurred())
			var victims []incident.Tenant
			for shard := range 2 {
				t := plan.OnShard(shard)[0]
				victims = append(victims, incident.Tenant{ID: t.ID, Shard: t.Shard})
			}
			src := dataset.Source(c, layout, fixtures.Builtin())
			before, err := truth.Take(ctx, src)
			Expect(err).NotTo(HaveOccurred())
			live, deleted := map[int64]int64{}, map[int64]map[string]time.Time{}
			for _, v := range victims {
				live[v.ID], deleted[v.ID] = marks(ctx, c, layout, v, time.Time{})
			}

			rec, err := incident.SoftDeleteTenants(ctx, c, "wrong-id-soft-deletion", victims)
			Expect(err).NotTo(HaveOccurred())
			Expect(rec.Layout).To(Equal(layout))
			Expect(rec.Affected).To(ConsistOf(victims))
			Expect(rec.Harms).To(HaveLen(2))
			for i, h := range rec.Harms {
				Expect(h.Shard).To(Equal(i), "harms in shard order")
				v := victims[h.Shard]
				Expect(h.Tenants).To(Equal([]int64{v.ID}))
				Expect(h.XID).NotTo(BeEmpty())
				Expect(h.RecoverTo).To(Equal(cluster.RecoveryTarget{XID: h.XID}))
				Expect(h.SoftDeleteMark).NotTo(BeZero())
				Expect(h.Time).To(BeTemporally(">=", h.SoftDeleteMark))
				Expect(h.Rows).To(Equal(live[v.ID]), "every live row of tenant %d is marked", v.ID)
				marked, stillDeleted := marks(ctx, c, layout, v, h.SoftDeleteMark)
				Expect(marked).To(Equal(h.Rows), "the rows holding the mark are the ones it marked")
				Expect(stillDeleted).To(Equal(deleted[v.ID]), "rows deleted before keep their own deletion time")
			}

			after, err := truth.Take(ctx, src)
			Expect(err).NotTo(HaveOccurred())
			for _, m := range truth.Compare(before, after) {
				Expect(m.Tenant).To(BeElementOf(victims[0].ID, victims[1].ID), "tenant %d's %s changed", m.Tenant, m.Table)
			}
		},
		Entry("shared tables", fixtures.LayoutShared),
		Entry("database per tenant", fixtures.LayoutDatabase),
	)

	It("refuses a tenant on a shard that does not exist, before harming anyone", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
		_, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 3, Tenants: 2, Rows: 500}, fixtures.FillOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = incident.SoftDeleteTenants(ctx, c, "x", []incident.Tenant{{ID: 1001, Shard: 0}, {ID: 1002, Shard: 5}})
		Expect(err).To(MatchError("soft-delete tenant 1002: shard 5 does not exist"))
		Expect(drilltest.QueryInt(ctx, c.Shards()[0].DSN(), "SELECT count(*) FROM issues WHERE deleted_at > now() - interval '1 hour'")).To(BeZero())
	})
})

// marks counts the tenant's rows whose deletion mark is mark (zero: not deleted) and returns
// its other deleted rows, as table(key), with their deletion times.
func marks(ctx context.Context, c cluster.Cluster, layout fixtures.Layout, t incident.Tenant, mark time.Time) (int64, map[string]time.Time) {
	GinkgoHelper()
	loc := layout.Locate(t.ID)
	conn := drilltest.Connect(ctx, c.Shards()[t.Shard].DSNFor(loc.Database))
	var want *time.Time // NULL: not deleted
	if !mark.IsZero() {
		want = &mark
	}
	var n int64
	others := map[string]time.Time{}
	for _, table := range fixtures.Builtin().TenantTables() {
		name := pgx.Identifier{loc.Schema, table.Name}.Sanitize()
		col := pgx.Identifier{table.SoftDelete}.Sanitize()
		var count int64
		Expect(conn.QueryRow(ctx, "SELECT count(*) FROM "+name+" WHERE tenant_id = $1 AND "+col+
			" IS NOT DISTINCT FROM $2", t.ID, want).Scan(&count)).To(Succeed())
		n += count
		rows, err := conn.Query(ctx, "SELECT $2 || ("+fixtures.ColumnList(table.PrimaryKey)+")::text, "+col+" FROM "+name+
			" WHERE tenant_id = $1 AND "+col+" IS DISTINCT FROM $3 AND "+col+" IS NOT NULL",
			t.ID, table.Name, want)
		Expect(err).NotTo(HaveOccurred())
		for rows.Next() {
			var key string
			var at time.Time
			Expect(rows.Scan(&key, &at)).To(Succeed())
			others[key] = at
		}
		Expect(rows.Err()).NotTo(HaveOccurred())
	}
	return n, others
}
