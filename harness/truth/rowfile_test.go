package truth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"

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
		for tt, rs := range rows {
			for _, r := range rs {
				Expect(f.Put(tt, r)).To(Succeed())
			}
		}
		Expect(f.Flush()).To(Succeed())
		_, err = os.Stat(truth.FileOf(f).Name())
		Expect(os.IsNotExist(err)).To(BeTrue(), "unlinked as soon as made")

		got, err := f.RowHashes(ctx, []truth.TenantTable{a, b, {Tenant: 9, Table: "issues"}})
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(rows))
		Expect(f.Count(a)).To(Equal(int64(2)))
		Expect(f.Put(a, truth.RowHash{Key: []string{"7", "3"}})).To(MatchError(ContainSubstring("written already")), "a sealed table takes no more rows")

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

	It("holds a table of a million rows, written interleaved with another, without holding them in memory", func(ctx context.Context) {
		const n = 1_000_000
		f, err := truth.NewRowFile()
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(f.Close)
		heap := func() uint64 {
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		runtime.GC()
		before := heap()
		row := func(i int) truth.RowHash {
			return truth.RowHash{Key: []string{"7", strconv.Itoa(i)}, Hash: int64(i) * 7919}
		}
		for i := range n {
			Expect(f.Put(a, row(i))).To(Succeed())
			if i%1000 == 0 {
				Expect(f.Put(b, truth.RowHash{Key: []string{"8", strconv.Itoa(i)}})).To(Succeed())
			}
		}
		Expect(f.Flush()).To(Succeed())
		runtime.GC()
		// Held, a million rows take some 80 MB (a key slice, two strings and a hash each).
		Expect(heap()).To(BeNumerically("<", before+4<<20), "written out, not held")
		Expect(f.Count(a)).To(Equal(int64(n)))
		Expect(f.Count(b)).To(Equal(int64(n / 1000)))

		By("reading them back one at a time, in the order written")
		var peak uint64
		next := 0
		Expect(f.EachRowHash(ctx, []truth.TenantTable{a}, func(tt truth.TenantTable, r truth.RowHash) error {
			if r.Hash != row(next).Hash || r.Key[1] != row(next).Key[1] {
				return fmt.Errorf("row %d came back as %v", next, r)
			}
			if next%100_000 == 0 {
				peak = max(peak, heap())
			}
			next++
			return nil
		})).To(Succeed())
		Expect(next).To(Equal(n))
		Expect(peak).To(BeNumerically("<", before+16<<20), "an extent at a time, not the table")

		By("stopping at the first error of the reader, and passing it on")
		stop := errors.New("enough")
		Expect(f.EachRowHash(ctx, []truth.TenantTable{b, a}, func(truth.TenantTable, truth.RowHash) error { return stop })).To(MatchError(stop))
	})
})
