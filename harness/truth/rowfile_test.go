package truth_test

import (
	"context"
	"os"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/truth"
)

var _ = Describe("a row file", func() {
	a := truth.TenantTable{Tenant: 7, Table: "comments"}
	b := truth.TenantTable{Tenant: 8, Table: "issues"}
	rows := map[truth.TenantTable][]truth.RowHash{
		a: {{Key: []string{"7", "1"}, Hash: -5}, {Key: []string{"7", "2"}, Hash: 1 << 62}},
		b: {{Key: []string{"8", "x,y"}, Hash: 0}},
	}

	It("gives back what it took, from a file no one can open by name, and refuses it changed", func(ctx context.Context) {
		f, err := truth.NewRowFile()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(f.Close)
		Expect(f.Add(rows)).To(Succeed())
		_, err = os.Stat(truth.FileOf(f).Name())
		Expect(os.IsNotExist(err)).To(BeTrue(), "unlinked as soon as made")

		got, err := f.RowHashes(ctx, []truth.TenantTable{a, b, {Tenant: 9, Table: "issues"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(rows))
		Expect(f.Count(a)).To(Equal(int64(2)))

		By("changing one byte of the file under it")
		file := truth.FileOf(f)
		one := make([]byte, 1)
		_, err = file.ReadAt(one, 3)
		Expect(err).NotTo(HaveOccurred())
		one[0] ^= 1
		_, err = file.WriteAt(one, 3)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.RowHashes(ctx, []truth.TenantTable{a, b})
		Expect(err).To(MatchError(ContainSubstring("changed since they were written")))
	})
})
