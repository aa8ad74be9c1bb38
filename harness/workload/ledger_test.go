package workload_test

import (
	"math"
	"math/big"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
)

// The ledger's arithmetic on hand-made fingerprints and writes: what every tenant table must
// hold is decided without a server, so none is started.

func tt(tenant int64, table string) truth.TenantTable {
	return truth.TenantTable{Tenant: tenant, Table: table}
}

// snapshot is a one-shard snapshot of the given fingerprints.
func snapshot(tables map[truth.TenantTable]truth.Fingerprint) *truth.Snapshot {
	s := &truth.Snapshot{Layout: fixtures.LayoutShared}
	for k, f := range tables {
		s.Entries = append(s.Entries, truth.Entry{Tenant: k.Tenant, Table: k.Table, Fingerprint: f})
	}
	return s
}

func fp(rows int64, sum int64) truth.Fingerprint {
	return truth.Fingerprint{Rows: rows, Sum: strconv.FormatInt(sum, 10)}
}

func write(tenant int64, table string, id string, op workload.Op, delta workload.Delta) workload.Entry {
	return workload.Entry{Tenant: tenant, Table: table, Key: []string{strconv.FormatInt(tenant, 10), id}, Op: op, Delta: delta}
}

func indeterminate(e workload.Entry) workload.Entry {
	e.Indeterminate, e.Delta = true, workload.Delta{}
	return e
}

func directory(tenant int64) workload.Entry {
	return workload.Entry{Tenant: tenant, Shard: workload.DirectoryShard, Table: truth.DirectoryTable,
		Key: []string{strconv.FormatInt(tenant, 10)}, Op: workload.OpUpdate, Delta: workload.Delta{Add: 5, Sub: 3}}
}

var (
	comments1, issues1 = tt(1, fixtures.TableComments), tt(1, fixtures.TableIssues)
	comments2          = tt(2, fixtures.TableComments)
	before             = map[truth.TenantTable]truth.Fingerprint{comments1: fp(10, 1000), issues1: fp(5, 500), comments2: fp(3, -7)}
)

var _ = Describe("the ledger", func() {
	DescribeTable("says what every tenant table must hold: its fingerprint before, changed by each acknowledged write",
		func(entries []workload.Entry, want map[truth.TenantTable]truth.Fingerprint) {
			Expect(workload.LedgerOf(entries).Expected(snapshot(before))).To(Equal(want))
		},
		Entry("no write: as before", nil, before),
		Entry("an insert, an update and a delete", []workload.Entry{
			write(1, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{Rows: 1, Add: 70}),
			write(1, fixtures.TableIssues, "2", workload.OpUpdate, workload.Delta{Add: 40, Sub: 25}),
			write(1, fixtures.TableComments, "4", workload.OpDelete, workload.Delta{Rows: -1, Sub: 33}),
		}, map[truth.TenantTable]truth.Fingerprint{comments1: fp(10+1-1, 1000+70-33), issues1: fp(5, 500+40-25), comments2: before[comments2]}),
		Entry("a write of unknown outcome changes nothing", []workload.Entry{
			indeterminate(write(2, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{})),
		}, before),
		Entry("a write to the tenant directory is no tenant table's", []workload.Entry{directory(1)}, before),
		Entry("a table the workload wrote first is counted from empty", []workload.Entry{
			write(3, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{Rows: 1, Add: 11}),
		}, map[truth.TenantTable]truth.Fingerprint{comments1: before[comments1], issues1: before[issues1], comments2: before[comments2],
			tt(3, fixtures.TableComments): fp(1, 11)}),
	)

	It("sums hashes past the range of an int64", func() {
		start := map[truth.TenantTable]truth.Fingerprint{comments1: fp(1, math.MaxInt64)}
		entries := []workload.Entry{
			write(1, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{Rows: 1, Add: math.MaxInt64}),
			write(1, fixtures.TableComments, "901", workload.OpInsert, workload.Delta{Rows: 1, Add: math.MaxInt64}),
		}
		want := new(big.Int).Mul(big.NewInt(math.MaxInt64), big.NewInt(3))
		Expect(workload.LedgerOf(entries).Expected(snapshot(start))).To(Equal(map[truth.TenantTable]truth.Fingerprint{
			comments1: {Rows: 3, Sum: want.String()}}))
	})

	Describe("Check", func() {
		inserted := write(1, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{Rows: 1, Add: 70})
		ledger := workload.LedgerOf([]workload.Entry{inserted,
			indeterminate(write(2, fixtures.TableComments, "901", workload.OpInsert, workload.Delta{}))})
		must := ledger.Expected(snapshot(before))

		DescribeTable("lists every table that differs from what the acknowledged writes say, in tenant and table order",
			func(change func(after map[truth.TenantTable]truth.Fingerprint), want []truth.Mismatch) {
				after := map[truth.TenantTable]truth.Fingerprint{}
				for k, f := range must {
					after[k] = f
				}
				change(after)
				got := ledger.Check(snapshot(before), snapshot(after))
				if want == nil {
					Expect(got).To(BeEmpty())
					return
				}
				Expect(got).To(Equal(want))
			},
			Entry("nothing differs", func(map[truth.TenantTable]truth.Fingerprint) {}, nil),
			Entry("an acknowledged insert that is not there", func(after map[truth.TenantTable]truth.Fingerprint) {
				after[comments1] = before[comments1]
			}, []truth.Mismatch{{TenantTable: comments1, Want: fp(11, 1070), Got: before[comments1]}}),
			Entry("a table a write of unknown outcome touched, like any other: which rows it excuses is for a row-level check",
				func(after map[truth.TenantTable]truth.Fingerprint) { after[comments2] = fp(4, -7+99) },
				[]truth.Mismatch{{TenantTable: comments2, Want: before[comments2], Got: fp(4, -7+99)}}),
			Entry("a table that vanished", func(after map[truth.TenantTable]truth.Fingerprint) { delete(after, issues1) },
				[]truth.Mismatch{{TenantTable: issues1, Want: before[issues1]}}),
			Entry("a table nobody wrote to that appeared", func(after map[truth.TenantTable]truth.Fingerprint) {
				after[tt(9, fixtures.TableUsers)] = fp(1, 5)
			}, []truth.Mismatch{{TenantTable: tt(9, fixtures.TableUsers), Got: fp(1, 5)}}),
			Entry("an empty table and an absent one are the same", func(after map[truth.TenantTable]truth.Fingerprint) {
				after[tt(9, fixtures.TableUsers)] = fp(0, 0)
			}, nil),
		)

		It("orders what differs by tenant, then by table name", func() {
			after := map[truth.TenantTable]truth.Fingerprint{comments2: fp(0, 0), issues1: fp(0, 0), comments1: fp(0, 0)}
			var got []truth.TenantTable
			for _, m := range ledger.Check(snapshot(before), snapshot(after)) {
				got = append(got, m.TenantTable)
			}
			Expect(got).To(Equal([]truth.TenantTable{comments1, issues1, comments2}))
		})
	})

	It("names the rows writes of unknown outcome touched, tenant directory included, and no other", func() {
		unknown := indeterminate(write(2, fixtures.TableComments, "901", workload.OpInsert, workload.Delta{}))
		dir := indeterminate(directory(1))
		ledger := workload.LedgerOf([]workload.Entry{
			write(1, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{Rows: 1, Add: 70}), unknown, dir, directory(3)})
		Expect(ledger.Uncertain()).To(Equal(map[truth.TenantTable]map[string]bool{
			comments2:                   {truth.KeyString(unknown.Key): true},
			tt(1, truth.DirectoryTable): {truth.KeyString(dir.Key): true},
		}))
		Expect(ledger.Acknowledged()).To(Equal(2), "the insert and the directory update of tenant 3")
	})

	It("keeps its own copy of its entries, and hands out copies", func() {
		entries := []workload.Entry{write(1, fixtures.TableComments, "900", workload.OpInsert, workload.Delta{Rows: 1, Add: 70})}
		ledger := workload.LedgerOf(entries)
		entries[0].Tenant = 99
		out := ledger.Entries()
		out[0].Tenant = 98
		Expect(ledger.Entries()).To(HaveExactElements(HaveField("Tenant", int64(1))))
	})

	DescribeTable("tells a write to the tenant directory from a write to a tenant table",
		func(e workload.Entry, isDirectory bool) {
			Expect(e.Directory()).To(Equal(isDirectory))
			Expect(e.TenantTable()).To(Equal(truth.TenantTable{Tenant: e.Tenant, Table: e.Table}))
		},
		Entry("the directory", directory(4), true),
		Entry("shard 0's comments", write(4, fixtures.TableComments, "1", workload.OpDelete, workload.Delta{Rows: -1}), false),
	)
})

var _ = Describe("Timestamp", func() {
	It("is in UTC, to the microsecond Postgres keeps", func() {
		in := time.Date(2026, 1, 2, 3, 4, 5, 123_456_789, time.FixedZone("UTC+1", 3600))
		got := workload.Timestamp(in)
		Expect(got.Location()).To(Equal(time.UTC))
		Expect(got).To(BeTemporally("==", in.Add(-789*time.Nanosecond)))
		Expect(got.Nanosecond() % 1000).To(BeZero())
	})
})
