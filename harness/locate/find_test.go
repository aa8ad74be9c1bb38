package locate_test

import (
	"context"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
)

var _ = Describe("finding the harm from a ticket", Label(drilltest.Slow), func() {
	for _, layout := range []fixtures.Layout{fixtures.LayoutShared, fixtures.LayoutSchema} {
		It("finds all 6 victims of a script run as 6 transactions from a ticket naming 1, and not the tenants whose rows were deleted legitimately meanwhile: "+string(layout), func(ctx context.Context) {
			c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 1})
			m := fixtures.Builtin()
			plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 5, Tenants: 16, Rows: 6000, Layout: layout}, fixtures.FillOptions{})
			Expect(err).NotTo(HaveOccurred())
			prot, err := backup.Protect(ctx, c, "locate")
			Expect(err).NotTo(HaveOccurred())
			shard := c.Shards()[0]
			tenants := plan.OnShard(0)
			var victims []incident.Tenant
			for _, t := range tenants[:6] {
				victims = append(victims, incident.Tenant{ID: t.ID, Shard: 0})
			}
			bystanders := tenants[6:9]
			from := time.Now().Add(-time.Second)

			By("deleting one comment of each of 3 other tenants, legitimately, between the script's transactions")
			comments, ok := m.LookupTable("comments")
			Expect(ok).To(BeTrue())
			conn := drilltest.Connect(ctx, shard.DSN())
			deleteOne := func(id int64) {
				schema := layout.Locate(id).Schema
				cond, err := m.OwnerCondition(comments, schema, "c", "= $1")
				Expect(err).NotTo(HaveOccurred())
				table := pgx.Identifier{schema, "comments"}.Sanitize()
				tag, err := conn.Exec(ctx, "DELETE FROM "+table+" WHERE ctid = (SELECT c.ctid FROM "+table+" c WHERE "+cond+" LIMIT 1)", id)
				Expect(err).NotTo(HaveOccurred())
				Expect(tag.RowsAffected()).To(BeEquivalentTo(1))
			}
			var first string
			for i, v := range victims {
				if i < len(bystanders) {
					deleteOne(bystanders[i].ID)
				}
				rec, err := incident.DeleteTenants(ctx, c, "wrong-id-deletion", []incident.Tenant{v})
				Expect(err).NotTo(HaveOccurred())
				if i == 0 {
					first = rec.Harms[0].XID
				}
			}
			to := time.Now().Add(time.Second)

			f, err := locate.Find(ctx, c, 0, prot.Backups[0], m, layout, locate.Report{Tenants: []int64{victims[2].ID}, From: from, To: to})
			Expect(err).NotTo(HaveOccurred())
			var want []int64
			for _, v := range victims {
				want = append(want, v.ID)
			}
			slices.Sort(want)
			Expect(f.Victims()).To(Equal(want), "every victim, the 5 no ticket names included, and no bystander")
			Expect(f.Harms).To(HaveLen(6))
			Expect(f.Considered).To(BeNumerically(">=", 9), "the bystanders' deletes were considered, and judged no harm")
			var confidence []string
			for _, h := range f.Harms {
				confidence = append(confidence, h.Confidence)
			}
			Expect(confidence).To(ConsistOf("reported", "pattern", "pattern", "pattern", "pattern", "pattern"))
			Expect(f.RecoverTo.XID).To(Equal(first), "just before the script's first transaction")
			Expect(strconv.ParseUint(f.RecoverTo.XID, 10, 32)).To(BeEquivalentTo(f.Harms[0].XID))
		})
	}
})
