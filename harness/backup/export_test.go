package backup_test

import (
	"context"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/backup"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/dataset"
	"github.com/pgdrill/pgdrill/harness/drilltest"
)

var _ = Describe("ExportTenants", func() {
	It("writes each tenant's tables in foreign-key order, and ReadExports finds only complete exports", func(ctx context.Context) {
		c := drilltest.StartCluster(ctx, provider, cluster.Spec{Shards: 2})
		plan, _, err := dataset.Fill(ctx, c, dataset.Schema{}, fixtures.PlanSpec{Seed: 7, Tenants: 6, Rows: 2000, Layout: fixtures.LayoutSchema}, fixtures.FillOptions{})
		Expect(err).NotTo(HaveOccurred())
		picked := []int64{plan.OnShard(1)[0].ID, plan.OnShard(0)[0].ID}
		root := GinkgoT().TempDir()

		exp, err := backup.ExportTenants(ctx, c, picked, filepath.Join(root, "b"))
		Expect(err).NotTo(HaveOccurred())
		Expect(exp.RunID).To(Equal(c.RunID()))
		Expect(exp.Layout).To(Equal(fixtures.LayoutSchema))
		Expect(exp.Time).NotTo(BeZero())
		Expect(exp.Tenants).To(HaveLen(2))
		Expect(exp.Tenants[0].ID).To(BeNumerically("<", exp.Tenants[1].ID), "ordered by id")
		for _, id := range picked {
			t, ok := exp.Tenant(id)
			Expect(ok).To(BeTrue())
			planned, _ := plan.Tenant(id)
			Expect(t.Shard).To(Equal(planned.Shard))
			_, err := backup.ParseLSN(t.LSN)
			Expect(err).NotTo(HaveOccurred())
			Expect(t.Time).To(BeTemporally(">=", exp.Time))
			var names []string
			var rows int64
			for _, table := range t.Tables {
				names = append(names, table.Name)
				rows += table.Rows
				Expect(exp.Path(table)).To(BeARegularFile())
			}
			Expect(names).To(Equal(fixtures.TableNames(fixtures.Builtin().TenantTables())))
			Expect(rows).To(Equal(planned.Rows), "every row of tenant %d", id)
		}
		_, ok := exp.Tenant(plan.OnShard(0)[1].ID)
		Expect(ok).To(BeFalse(), "only the tenants asked for")

		By("leaving an interrupted export behind")
		Expect(os.MkdirAll(filepath.Join(root, "a-interrupted", fixtures.TenantContainer(picked[0])), 0o755)).To(Succeed())
		found, err := backup.ReadExports(root)
		Expect(err).NotTo(HaveOccurred())
		Expect(found).To(HaveLen(1))
		Expect(found[0].Dir).To(Equal(exp.Dir))
		Expect(found[0].Tenants).To(Equal(exp.Tenants))

		_, err = backup.ExportTenants(ctx, c, []int64{99999}, filepath.Join(root, "c"))
		Expect(err).To(MatchError("export tenant 99999: not in the catalog"))
	})
})
