package locate_test

import (
	"context"
	"slices"
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
})

// lsn parses a WAL position.
func lsn(s string) backup.LSN {
	GinkgoHelper()
	l, err := backup.ParseLSN(s)
	Expect(err).NotTo(HaveOccurred())
	return l
}
