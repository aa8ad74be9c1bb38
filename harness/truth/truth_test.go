package truth_test

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/truth"
)

var spec = fixtures.PlanSpec{Seed: 42, Tenants: 5, Rows: 3000, Shards: 2, Layout: fixtures.LayoutShared}

func withLayout(l fixtures.Layout) fixtures.PlanSpec { s := spec; s.Layout = l; return s }

func key(tenant int64, id int) []string { return []string{fmt.Sprint(tenant), fmt.Sprint(id)} }

var _ = Describe("fingerprints", Label("slow"), Ordered, func() {
	var shared, schema, database, otherSeed filled
	BeforeAll(func(ctx SpecContext) {
		shared = fill(ctx, spec)
		schema = fill(ctx, withLayout(fixtures.LayoutSchema))
		database = fill(ctx, withLayout(fixtures.LayoutDatabase))
		other := spec
		other.Seed++
		otherSeed = fill(ctx, other)
	})

	It("are identical for the same seed, in every layout", func(ctx SpecContext) {
		want := shared.snapshot(ctx)
		Expect(want.Tenants()).To(HaveLen(spec.Tenants))
		Expect(want.Tables()).To(HaveLen(spec.Tenants * len(fixtures.Builtin().TenantTables())))
		for _, f := range []filled{schema, database} {
			Expect(truth.Compare(want, f.snapshot(ctx))).To(BeEmpty(), "layout %s", f.plan.Spec.Layout)
		}
	})

	It("count every planned row", func(ctx SpecContext) {
		for tt, fp := range shared.snapshot(ctx).Tables() {
			t, ok := shared.plan.Tenant(tt.Tenant)
			Expect(ok).To(BeTrue())
			Expect(fp.Rows).To(Equal(t.TableRows(tt.Table)))
		}
	})

	It("differ for another seed", func(ctx SpecContext) {
		mismatches := truth.Compare(shared.snapshot(ctx), otherSeed.snapshot(ctx))
		Expect(len(mismatches)).To(BeNumerically(">", spec.Tenants))
	})

	It("find every tenant on the shard the catalog names, in every layout", func(ctx SpecContext) {
		for _, f := range []filled{shared, schema, database} {
			Expect(truth.CheckPlacement(f.homes(), f.snapshot(ctx))).To(BeEmpty(), "layout %s", f.plan.Spec.Layout)
		}
	})
})

// diffOf fingerprints f, then diffs it against the truth taken before the mutation.
func diffOf(ctx context.Context, f filled, before *truth.Snapshot, mutate func()) []truth.TableDiff {
	GinkgoHelper()
	// The truth's rows, kept before the mutation, serve as the "want" side of the diff.
	kept := keepRows(ctx, f.src, before)
	mutate()
	mismatches := truth.Compare(before, f.snapshot(ctx))
	diffs, err := truth.Diff(ctx, kept, f.src, mismatches, nil, 10)
	Expect(err).NotTo(HaveOccurred())
	return diffs
}

// keptRows serves per-row hashes read before a mutation.
type keptRows map[truth.TenantTable][]truth.RowHash

func (k keptRows) RowHashes(_ context.Context, tables []truth.TenantTable) (map[truth.TenantTable][]truth.RowHash, error) {
	out := map[truth.TenantTable][]truth.RowHash{}
	for _, tt := range tables {
		out[tt] = k[tt]
	}
	return out, nil
}

func keepRows(ctx context.Context, src truth.Source, snap *truth.Snapshot) keptRows {
	GinkgoHelper()
	rows, err := src.RowHashes(ctx, slices.Collect(maps.Keys(snap.Tables())))
	Expect(err).NotTo(HaveOccurred())
	return rows
}

func rowDiff(kind truth.DiffKind, k []string) truth.RowDiff {
	return truth.RowDiff{Kind: kind, Key: k, Copies: 1}
}

var _ = Describe("Compare and Diff", Label("slow"), func() {
	for _, layout := range fixtures.Layouts() {
		It("name one changed cell by its key in the "+string(layout)+" layout", func(ctx SpecContext) {
			f := fill(ctx, withLayout(layout))
			t := f.plan.Tenants[0]
			diffs := diffOf(ctx, f, f.snapshot(ctx), func() {
				f.exec(ctx, t, fmt.Sprintf(`UPDATE comments SET body = body || ' (edited)' WHERE tenant_id = %d AND comment_id = 1`, t.ID))
			})
			Expect(diffs).To(HaveLen(1))
			Expect(diffs[0].TenantTable).To(Equal(truth.TenantTable{Tenant: t.ID, Table: fixtures.TableComments}))
			Expect(diffs[0].Changed).To(Equal(int64(1)))
			Expect(diffs[0].Rows).To(ConsistOf(rowDiff(truth.Changed, key(t.ID, 1))))
		})
	}

	Context("in the shared layout", func() {
		var f filled
		var before *truth.Snapshot
		BeforeEach(func(ctx SpecContext) {
			f = fill(ctx, spec)
			before = f.snapshot(ctx)
		})

		It("names one missing row", func(ctx SpecContext) {
			t := f.plan.Tenants[1]
			diffs := diffOf(ctx, f, before, func() {
				f.exec(ctx, t, fmt.Sprintf(`DELETE FROM comments WHERE tenant_id = %d AND comment_id = 2`, t.ID))
			})
			Expect(diffs).To(HaveLen(1))
			Expect(diffs[0].Missing).To(Equal(int64(1)))
			Expect(diffs[0].Rows).To(ConsistOf(rowDiff(truth.Missing, key(t.ID, 2))))
		})

		It("names one extra row", func(ctx SpecContext) {
			t := f.plan.Tenants[2]
			diffs := diffOf(ctx, f, before, func() {
				f.exec(ctx, t, fmt.Sprintf(`INSERT INTO comments SELECT tenant_id, 900000, issue_id, author_id, body, created_at, updated_at, deleted_at
					FROM comments WHERE tenant_id = %d AND comment_id = 1`, t.ID))
			})
			Expect(diffs).To(HaveLen(1))
			Expect(diffs[0].Extra).To(Equal(int64(1)))
			Expect(diffs[0].Rows).To(ConsistOf(rowDiff(truth.Extra, key(t.ID, 900000))))
		})

		It("names one row moved to another tenant on both sides", func(ctx SpecContext) {
			from, to := f.twoOnOneShard()
			diffs := diffOf(ctx, f, before, func() {
				f.exec(ctx, from, fmt.Sprintf(`UPDATE comments SET tenant_id = %d, comment_id = 900003, issue_id = 1, author_id = 1
					WHERE tenant_id = %d AND comment_id = 3`, to.ID, from.ID))
			})
			Expect(diffs).To(HaveLen(2))
			var rows []truth.RowDiff
			for _, d := range diffs {
				rows = append(rows, d.Rows...)
			}
			Expect(rows).To(ConsistOf(rowDiff(truth.Missing, key(from.ID, 3)), rowDiff(truth.Extra, key(to.ID, 900003))))
		})

		It("finds one tenant's rows on the wrong shard, which a fingerprint alone cannot", func(ctx SpecContext) {
			t := f.plan.Tenants[0]
			other := 1 - t.Shard
			moveTenant(ctx, f, t, other)
			Expect(truth.Compare(before, f.snapshot(ctx))).To(BeEmpty())
			Expect(truth.CheckPlacement(f.homes(), f.snapshot(ctx))).To(ConsistOf(truth.Misplacement{Tenant: t.ID, Shard: other, CatalogShard: t.Shard, Rows: t.Rows}))
		})
	})
})

// moveTenant copies the tenant's rows to another shard, parents first, then deletes them from
// its own, children first: a botched rebalance.
func moveTenant(ctx context.Context, f filled, t fixtures.Tenant, to int) {
	GinkgoHelper()
	src, err := pgx.Connect(ctx, f.src.Shards[t.Shard])
	Expect(err).NotTo(HaveOccurred())
	defer src.Close(ctx)
	dst, err := pgx.Connect(ctx, f.src.Shards[to])
	Expect(err).NotTo(HaveOccurred())
	defer dst.Close(ctx)
	tables := fixtures.Builtin().TenantTables()
	for _, tb := range tables {
		var buf bytes.Buffer
		_, err := src.PgConn().CopyTo(ctx, &buf, fmt.Sprintf("COPY (SELECT * FROM %s WHERE tenant_id = %d) TO STDOUT", tb.Name, t.ID))
		Expect(err).NotTo(HaveOccurred())
		_, err = dst.PgConn().CopyFrom(ctx, &buf, "COPY "+tb.Name+" FROM STDIN")
		Expect(err).NotTo(HaveOccurred())
	}
	slices.Reverse(tables)
	for _, tb := range tables {
		_, err := src.Exec(ctx, "DELETE FROM "+tb.Name+" WHERE tenant_id = $1", t.ID)
		Expect(err).NotTo(HaveOccurred())
	}
}

var _ = Describe("Diff", func() {
	It("counts duplicated keys and lists rows up to the limit", func(ctx SpecContext) {
		tt := truth.TenantTable{Tenant: 7, Table: fixtures.TableComments}
		want := keptRows{tt: {{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 20}, {Key: key(7, 3), Hash: 30}}}
		got := keptRows{tt: {{Key: key(7, 1), Hash: 10}, {Key: key(7, 1), Hash: 10}, {Key: key(7, 3), Hash: 31}, {Key: key(7, 10), Hash: 1}}}
		diffs, err := truth.Diff(ctx, want, got, []truth.Mismatch{{TenantTable: tt}}, nil, 3)
		Expect(err).NotTo(HaveOccurred())
		Expect(diffs).To(HaveLen(1))
		d := diffs[0]
		Expect([]int64{d.Missing, d.Extra, d.Changed, d.Duplicated}).To(Equal([]int64{1, 1, 1, 1}))
		Expect(d.Rows).To(Equal([]truth.RowDiff{
			rowDiff(truth.Changed, key(7, 3)), rowDiff(truth.Duplicated, key(7, 1)), rowDiff(truth.Extra, key(7, 10)),
		}))
	})
})

var _ = Describe("DiffRows, for rows a write of unknown outcome touched", func() {
	tt := truth.TenantTable{Tenant: 7, Table: fixtures.TableComments}
	h := func(n int64) *int64 { return &n }
	want := []truth.RowHash{{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 20}}
	doubts := truth.Doubts{
		truth.KeyString(key(7, 2)): {h(20), nil}, // an unknown delete: there, or gone
		truth.KeyString(key(7, 3)): {nil, h(30)}, // an unknown insert: absent, or as sent
		truth.KeyString(key(7, 4)): []*int64{},   // states not known
		truth.KeyString(key(7, 5)): {nil, h(50)}, // an unknown insert that did not land
	}
	DescribeTable("excuses a state the write allows, and only that row",
		func(got []truth.RowHash, missing, extra, changed, excused, unresolved int64) {
			d := truth.DiffRows(tt, want, got, doubts, 10)
			Expect([]int64{d.Missing, d.Extra, d.Changed, d.Excused, d.Unresolved}).To(Equal([]int64{missing, extra, changed, excused, unresolved}))
		},
		Entry("the delete landed", []truth.RowHash{{Key: key(7, 1), Hash: 10}}, int64(0), int64(0), int64(0), int64(1), int64(0)),
		Entry("the insert landed", []truth.RowHash{{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 20}, {Key: key(7, 3), Hash: 30}},
			int64(0), int64(0), int64(0), int64(1), int64(0)),
		Entry("the inserted row holds what was not sent", []truth.RowHash{{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 20}, {Key: key(7, 3), Hash: 31}},
			int64(0), int64(1), int64(0), int64(0), int64(0)),
		Entry("the doubted row changed instead", []truth.RowHash{{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 21}},
			int64(0), int64(0), int64(1), int64(0), int64(0)),
		Entry("a row beside it is lost", []truth.RowHash{{Key: key(7, 2), Hash: 20}}, int64(1), int64(0), int64(0), int64(0), int64(0)),
		Entry("a row whose states are not known differs", []truth.RowHash{{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 20}, {Key: key(7, 4), Hash: 1}},
			int64(0), int64(0), int64(0), int64(0), int64(1)),
		Entry("a doubted key written twice", []truth.RowHash{{Key: key(7, 1), Hash: 10}, {Key: key(7, 2), Hash: 20}, {Key: key(7, 5), Hash: 50}, {Key: key(7, 5), Hash: 50}},
			int64(0), int64(2), int64(0), int64(0), int64(0)),
	)
})

var _ = Describe("the verifier's sessions", Label("slow"), func() {
	It("cannot be steered by a function planted where an unqualified call would find it", func(ctx SpecContext) {
		f := fill(ctx, spec)
		before := f.snapshot(ctx)
		for _, s := range f.c.Shards() {
			drilltest.Exec(ctx, s.DSN(), `CREATE FUNCTION public.hashtextextended(text, integer) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$ SELECT 0::bigint $$`,
				`ALTER DATABASE pgdrill SET search_path = public, pg_catalog`)
		}
		Expect(truth.Compare(before, f.snapshot(ctx))).To(BeEmpty(), "every row hashes as before")
	})

	It("tell a column retyped to text from the same values typed, though they print the same", func(ctx SpecContext) {
		f := fill(ctx, spec)
		before := f.snapshot(ctx)
		drilltest.Exec(ctx, f.c.Shards()[0].DSN(), `ALTER TABLE comments ALTER COLUMN created_at TYPE text`)
		var changed []string
		for _, m := range truth.Compare(before, f.snapshot(ctx)) {
			changed = append(changed, m.Table)
		}
		Expect(changed).NotTo(BeEmpty())
		Expect(changed).To(HaveEach(fixtures.TableComments))
	})
})

var _ = Describe("schema fingerprints", Label("slow"), func() {
	It("name every object a restore dropped, retyped or planted, and every sequence left behind its rows", func(ctx SpecContext) {
		f := fill(ctx, spec)
		places, err := truth.SchemaPlaces(ctx, f.src)
		Expect(err).NotTo(HaveOccurred())
		take := func() *truth.Schema {
			GinkgoHelper()
			s, err := truth.TakeSchema(ctx, places)
			Expect(err).NotTo(HaveOccurred())
			return s
		}
		before := take()
		Expect(truth.CompareSchemas(before, take())).To(BeEmpty(), "the same schema fingerprints the same")
		drilltest.Exec(ctx, f.c.Shards()[0].DSN(),
			`DROP INDEX issues_tenant_id_project_id_idx`,
			`ALTER TABLE comments ALTER COLUMN created_at TYPE text`,
			`CREATE FUNCTION public.tidy() RETURNS void LANGUAGE sql AS $$ SELECT $$`,
			`CREATE TABLE ids (id serial PRIMARY KEY)`, `INSERT INTO ids VALUES (5)`)
		drilltest.Exec(ctx, f.c.Catalog().DSN(), `ALTER TABLE tenants ALTER COLUMN tier DROP NOT NULL`)
		var details []string
		for _, c := range truth.CompareSchemas(before, take()) {
			details = append(details, c.Detail)
		}
		Expect(details).To(ContainElements(
			"index issues_tenant_id_project_id_idx on shard 0 is gone",
			"column comments.created_at on shard 0 changed type from timestamp with time zone to text",
			"function tidy() on shard 0 is new",
			"table ids on shard 0 is new",
			"sequence ids_id_seq on shard 0 is behind its rows: its next value is 1, but ids.id already holds 5",
			"column tenants.tier on catalog changed not null from true to false",
		))
	})

	It("cover every tenant database, and name a dropped one's objects", func(ctx SpecContext) {
		f := fill(ctx, withLayout(fixtures.LayoutDatabase))
		places, err := truth.SchemaPlaces(ctx, f.src)
		Expect(err).NotTo(HaveOccurred())
		Expect(places).To(HaveLen(1 + spec.Shards + spec.Tenants))
		before, err := truth.TakeSchema(ctx, places)
		Expect(err).NotTo(HaveOccurred())
		t := f.plan.Tenants[0]
		drilltest.Exec(ctx, f.c.Shards()[t.Shard].DSN(), "DROP DATABASE "+fixtures.TenantContainer(t.ID)+" WITH (FORCE)")
		now, err := truth.SchemaPlaces(ctx, f.src)
		Expect(err).NotTo(HaveOccurred())
		after, err := truth.TakeSchema(ctx, now)
		Expect(err).NotTo(HaveOccurred())
		var details []string
		for _, c := range truth.CompareSchemas(before, after) {
			details = append(details, c.Detail)
		}
		Expect(details).To(ContainElement(fmt.Sprintf("table comments on shard %d, database %s is gone", t.Shard, fixtures.TenantContainer(t.ID))))
	})
})
