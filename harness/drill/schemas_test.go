package drill_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/scenarios"
)

// ownSchema is a schema of a team's own that drills run on, and how its tenancy is declared.
type ownSchema struct {
	// file is the DDL file, relative to the repository root (or absolute).
	file string
	// dataset is the rest of spec.dataset (YAML flow mapping entries), declaring the tenancy.
	dataset string
}

// ownSchemas are the schemas of the drill specs: the README's example and the synthetic
// generator's test schemas, which between them hold composite keys, self-referencing trees,
// tables owned only through foreign keys, reference tables, identity and serial columns, enums,
// domains, jsonb, arrays and cycles of foreign keys.
var ownSchemas = []ownSchema{
	{"scenarios/examples/tasks.sql", "tenantKey: account_id, tenantKeys: {accounts: id}"},
	{"fixtures/testdata/schemas/saas.sql", "tenantKey: account_id, tenantKeys: {accounts: id}"},
	{"fixtures/testdata/schemas/shop.sql", ""},
	{"fixtures/testdata/schemas/cycles.sql", ""},
	{"fixtures/testdata/schemas/edge.sql", ""},
}

// The incidents of the drills of a schema of one's own (YAML of spec.incident): the table and
// column of a harm to one column are the model's choice.
const (
	deletion      = "{kind: wrong-id-deletion, after: 300ms, fraction: 0.25}"
	overwrite     = "{kind: update-without-where, after: 300ms, tenants: 2}"
	dropColumn    = "{kind: bad-migration, after: 300ms, migration: drop-column}"
	softDeletion  = "{kind: wrong-id-soft-delete, after: 300ms, fraction: 0.25}"
	exportedEvery = "{logicalExportInterval: 200ms}"
)

// strictObjectives are the objectives of a drill of a schema of one's own: everything back, exactly.
const strictObjectives = "[rto<=2m, rpo<=1s, completeness>=100%, collateral==0, lost_rows==0, integrity==ok, backups==verified]"

// ownScenario is a small drill of the incident (YAML) on the schema, restored as restore says
// (YAML) and protected as protection says, in the layout given, held to strictObjectives.
func ownScenario(s ownSchema, layout string, seed int, incident, restore, protection string) *scenarios.Scenario {
	GinkgoHelper()
	return ownScenarioWith(s, layout, seed, incident, restore, protection, strictObjectives)
}

// ownScenarioWith is ownScenario held to the objectives given (YAML).
func ownScenarioWith(s ownSchema, layout string, seed int, incident, restore, protection, objectives string) *scenarios.Scenario {
	GinkgoHelper()
	abs := s.file
	if !filepath.IsAbs(abs) {
		var err error
		abs, err = filepath.Abs(filepath.Join("..", "..", s.file))
		Expect(err).NotTo(HaveOccurred())
	}
	dataset := "tenants: 12, rows: 6000, schema: " + filepath.Base(abs)
	if s.dataset != "" {
		dataset += ", " + s.dataset
	}
	// The scenario file is taken to sit beside the schema, which it names by base name.
	sc, err := scenarios.Parse(filepath.Join(filepath.Dir(abs), "own.yaml"), []byte(fmt.Sprintf(`apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata:
  id: own-schema
  title: A drill of a schema of one's own
spec:
  hypothesis: The restore brings every harmed tenant of the team's own schema back.
  seed: %d
  cluster: {shards: 2, layout: %s}
  dataset: {%s}
  workload: {rate: 200}
  protection: %s
  incident: %s
  detection: {delay: 200ms}
  restore: %s
  objectives: %s
`, seed, layout, dataset, protection, incident, restore, objectives)))
	Expect(err).NotTo(HaveOccurred())
	return sc
}

var _ = Describe("a drill of a schema of one's own", Label(drilltest.Slow), func() {
	for i, s := range ownSchemas {
		name := strings.TrimSuffix(filepath.Base(s.file), ".sql")
		seed := 400 + 10*i
		Describe(name, func() {
			It("passes wrong-id-deletion restored by pitr-sidecar, the workload writing throughout", func(ctx context.Context) {
				out := runWith(ctx, ownScenario(s, "shared", seed, deletion, "{strategy: pitr-sidecar}", "{}"))
				expectPassed(out)
				Expect(out.Writes).To(BeNumerically(">", 20), "the workload wrote to the schema's tables")
				Expect(out.Affected).To(HaveLen(3))
				for _, t := range out.Affected {
					Expect(t.Expected).To(BeNumerically(">", 0))
				}
			})
			It("passes update-without-where restored by pitr-sidecar", func(ctx context.Context) {
				out := runWith(ctx, ownScenario(s, "shared", seed+1, overwrite, "{strategy: pitr-sidecar}", "{}"))
				expectPassed(out)
				Expect(out.Incident.Harms).NotTo(BeEmpty())
				Expect(out.Incident.Harms[0].Column).NotTo(BeNil(), "a real column of the schema was harmed")
			})
			It("passes wrong-id-deletion restored by delayed-standby", func(ctx context.Context) {
				expectPassed(runWith(ctx, ownScenario(s, "shared", seed+2, deletion, "{strategy: delayed-standby}", "{standbyApplyDelay: 1m}")))
			})
			It("passes update-without-where restored by delayed-standby", func(ctx context.Context) {
				expectPassed(runWith(ctx, ownScenario(s, "shared", seed+3, overwrite, "{strategy: delayed-standby}", "{standbyApplyDelay: 1m}")))
			})
			if i == 0 { // the README's example: every other incident and strategy on it
				It("passes bad-migration (a column dropped) restored by pitr-sidecar", func(ctx context.Context) {
					expectPassed(runWith(ctx, ownScenario(s, "shared", seed+6, dropColumn, "{strategy: pitr-sidecar}", "{}")))
				})
				It("passes wrong-id-soft-delete undone by soft-delete-undo", func(ctx context.Context) {
					expectPassed(runWith(ctx, ownScenario(s, "shared", seed+7, softDeletion, "{strategy: soft-delete-undo}", "{}")))
				})
				It("ends shard-loss restored by full-shard-pitr as its objectives say", func(ctx context.Context) {
					// Writes in WAL the lost disk never archived die with it: bounded, as in the
					// built-in shard-loss scenario.
					out := runWith(ctx, ownScenarioWith(s, "shared", seed+9, "{kind: shard-loss, after: 300ms, shard: 1}",
						"{strategy: full-shard-pitr}", "{}", "[rto<=2m, completeness>=90%, collateral==0, integrity==ok, backups==verified]"))
					Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
					Expect(out.Affected).NotTo(BeEmpty())
				})
				It("fails a restore that links a tenant's row to another tenant's", func(ctx context.Context) {
					out := sabotagedRun(ctx, ownScenario(s, "shared", seed+10, deletion, "{strategy: pitr-sidecar}", "{}"), "schema-cross-tenant")
					Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
					Expect(failedCheck(out, "tenancy")).To(MatchRegexp(`1 row\(s\) of \w+ on shard \d point through \w+ at another tenant's rows`))
				})
				It("passes update-without-where restored by logical-export, within the export's age", func(ctx context.Context) {
					// An export is up to its interval old: what the tenants wrote since is lost, and
					// bounded here.
					out := runWith(ctx, ownScenarioWith(s, "shared", seed+8, overwrite, "{strategy: logical-export}", exportedEvery,
						"[rto<=2m, completeness>=90%, collateral==0, integrity==ok]"))
					Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason)
				})
			}
			for _, layout := range []string{"schema", "database"} {
				It("passes wrong-id-deletion in the "+layout+" layout, from the same file", func(ctx context.Context) {
					expectPassed(runWith(ctx, ownScenario(s, layout, seed+4, deletion, "{strategy: pitr-sidecar}", "{}")))
				})
			}
			DescribeTable("fails a sabotaged restore",
				func(ctx context.Context, sabotage string, check func(*drill.Outcome)) {
					sc := ownScenario(s, "shared", seed+5, deletion, "{strategy: pitr-sidecar}", "{}")
					out := sabotagedRun(ctx, sc, sabotage)
					Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
					Expect(out.Affected).NotTo(BeEmpty(), "the drill verified: %s\n%s", out.Reason, runbookOutput(out))
					check(out)
				},
				Entry("that does nothing", "nothing", func(o *drill.Outcome) {
					Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeNumerically(">", 10))
				}),
				Entry("that misses one row", "schema-miss-row", func(o *drill.Outcome) {
					Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeEquivalentTo(1))
					Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeZero())
				}),
				Entry("that changes one cell", "schema-change-cell", func(o *drill.Outcome) {
					Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeEquivalentTo(1))
					Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeZero())
				}),
				Entry("that duplicates a row", "schema-duplicate-row", func(o *drill.Outcome) {
					Expect(sum(o, func(t score.Tenant) int64 { return t.Duplicated })).To(BeEquivalentTo(1))
					Expect(o.Integrity).To(ContainElement(And(HaveField("Name", "schema"), HaveField("Passed", false))))
				}),
			)
		})
	}
})

// sabotagedRun runs sc with the sabotage runbook doing sabotage.
func sabotagedRun(ctx context.Context, sc *scenarios.Scenario, sabotage string) *drill.Outcome {
	GinkgoHelper()
	GinkgoT().Setenv(sabotageEnv, sabotage)
	GinkgoT().Setenv("PGDRILL_BIN", pgdrillBin)
	GinkgoT().Setenv("PGDRILL_STATE_DIR", provider.Store().Dir())
	sc.Spec.Restore.Strategy = scenarios.RunbookStrategy
	sc.Spec.Restore.Runbook = &scenarios.Runbook{
		Command: fmt.Sprintf("%q -test.run='^TestSabotageRunbook$' -test.count=1", os.Args[0]),
		Timeout: scenarios.Duration(2 * time.Minute),
	}
	return drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
}

// schemaSabotage does, after a correct restore, a sabotage of a schema of one's own, through the
// model the incident file hands a runbook: one row of the first affected tenant missing, changed
// or duplicated, in a table nothing references.
func schemaSabotage(t *testing.T, ctx context.Context, f restore.IncidentFile, mode string) {
	m := f.Model
	victim := f.Affected[0]
	conn, err := pgx.Connect(ctx, f.Shards[victim.Shard].DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string, args ...any) int64 {
		tag, err := conn.Exec(ctx, sql, args...)
		if err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return tag.RowsAffected()
	}
	// The victim's first row of tb, by key, as a condition on alias t.
	first := func(tb fixtures.Table) string {
		owned, err := m.OwnerSQL(tb, fixtures.SharedSchema, "t")
		if err != nil {
			t.Fatal(err)
		}
		key := fixtures.QualifiedColumns("t", tb.PrimaryKey)
		return "(" + key + ") = (SELECT " + key + " FROM " + owned.From + " WHERE " + owned.Where(victim.ID) + " ORDER BY " + key + " LIMIT 1)"
	}
	switch mode {
	case "schema-miss-row", "schema-duplicate-row":
		tables := m.TenantTables()
		for i := len(tables) - 1; i >= 0; i-- {
			tb := tables[i]
			name := pgx.Identifier{fixtures.SharedSchema, tb.Name}.Sanitize()
			if m.Referenced(tb.Name) {
				continue
			}
			if mode == "schema-miss-row" {
				if exec("DELETE FROM "+name+" t WHERE "+first(tb)) == 1 {
					return
				}
				continue
			}
			cols := fixtures.ColumnList(tb.WrittenColumns())
			exec("ALTER TABLE " + name + " DROP CONSTRAINT " + pgx.Identifier{tb.PrimaryKeyName}.Sanitize() + " CASCADE")
			for _, u := range tb.Uniques { // a second copy must break no key
				if u.Index {
					exec("DROP INDEX " + pgx.Identifier{fixtures.SharedSchema, u.Name}.Sanitize())
				} else {
					exec("ALTER TABLE " + name + " DROP CONSTRAINT " + pgx.Identifier{u.Name}.Sanitize() + " CASCADE")
				}
			}
			if exec("INSERT INTO "+name+" ("+cols+") OVERRIDING SYSTEM VALUE SELECT "+fixtures.QualifiedColumns("t", tb.WrittenColumns())+
				" FROM "+name+" t WHERE "+first(tb)) == 1 {
				return
			}
		}
	case "schema-cross-tenant":
		// A foreign key that does not carry the tenant column, pointed at another tenant's row.
		for _, tb := range m.TenantTables() {
			for _, fk := range tb.ForeignKeys {
				parent, _ := m.LookupTable(fk.RefTable)
				if !parent.Tenant() || parent.Name == tb.Name || slices.Contains(fk.Columns, tb.Owner.Column) || slices.Contains(tb.Owner.Path, fk.Name) {
					continue
				}
				po, err := m.OwnerSQL(parent, fixtures.SharedSchema, "p")
				if err != nil {
					t.Fatal(err)
				}
				name := pgx.Identifier{fixtures.SharedSchema, tb.Name}.Sanitize()
				if exec("UPDATE "+name+" t SET ("+fixtures.ColumnList(fk.Columns)+") = (SELECT "+fixtures.QualifiedColumns("p", fk.RefColumns)+
					" FROM "+po.From+" WHERE "+po.Tenant+" <> "+fmt.Sprint(victim.ID)+" LIMIT 1) WHERE "+first(tb)) == 1 {
					return
				}
			}
		}
	case "schema-change-cell":
		table, column, ok := m.HarmableColumn(false)
		if !ok {
			t.Fatal("the schema has no data column to change")
		}
		tb, _ := m.LookupTable(table)
		name := pgx.Identifier{fixtures.SharedSchema, tb.Name}.Sanitize()
		col := pgx.Identifier{column}.Sanitize()
		// Another row's value: of the column's type, and within its checks.
		if exec("UPDATE "+name+" t SET "+col+" = (SELECT o."+col+" FROM "+name+" o WHERE o."+col+" IS NOT NULL AND o."+col+
			" IS DISTINCT FROM t."+col+" LIMIT 1) WHERE "+first(tb)) == 1 {
			return
		}
	}
	t.Fatalf("sabotage %s found no row of tenant %d to damage", mode, victim.ID)
}

var _ = Describe("a schema pgdrill cannot drill", func() {
	// bad writes the DDL into a file of its own and returns a drill of it.
	bad := func(ddl string) *scenarios.Scenario {
		GinkgoHelper()
		path := filepath.Join(GinkgoT().TempDir(), "bad.sql")
		Expect(os.WriteFile(path, []byte(ddl), 0o644)).To(Succeed())
		return ownScenario(ownSchema{file: path}, "shared", 1, deletion, "{strategy: pitr-sidecar}", "{}")
	}

	It("is refused before anything is filled when the synthetic rows cannot keep a constraint, naming table, column and constraint", func(ctx context.Context) {
		out := runWith(ctx, bad(`CREATE TABLE accounts (tenant_id bigint PRIMARY KEY, name text NOT NULL);
CREATE TABLE orders (tenant_id bigint NOT NULL REFERENCES accounts, order_id bigint NOT NULL,
  qty integer NOT NULL CHECK (qty % 7 = 3 AND qty % 7 = 4), PRIMARY KEY (tenant_id, order_id));`))
		Expect(out.Verdict).To(Equal(score.Error))
		Expect(out.InvalidInput).To(BeTrue())
		Expect(out.Reason).To(ContainSubstring("table orders: column qty breaks constraint orders_qty_check"))
		Expect(out.Incident).To(BeNil(), "nothing was harmed")
		Expect(out.Writes).To(BeZero())
	})

	It("is refused with Postgres's own words when the file does not load", func(ctx context.Context) {
		out := runWith(ctx, bad(`CREATE TABLE accounts (tenant_id bigint PRIMARY KEY, name txet NOT NULL);`))
		Expect(out.InvalidInput).To(BeTrue())
		Expect(out.Reason).To(ContainSubstring(`type "txet" does not exist`))
	})

	It("is refused, saying why, when it has no tenant column or a table without a primary key", func(ctx context.Context) {
		out := runWith(ctx, bad(`CREATE TABLE notes (id bigint, body text);`))
		Expect(out.InvalidInput).To(BeTrue())
		Expect(out.Reason).To(ContainSubstring("table notes: has no primary key"))
		Expect(out.Reason).To(ContainSubstring(`no table has the tenant column "tenant_id"`))
	})
})
