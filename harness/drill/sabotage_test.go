package drill_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/locate"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/restore"
	"github.com/pgdrill/pgdrill/harness/score"
	"github.com/pgdrill/pgdrill/harness/truth"
	"github.com/pgdrill/pgdrill/harness/workload"
	"github.com/pgdrill/pgdrill/scenarios"
)

// The sabotage specs keep the scorer honest. Each plugs a runbook into a real drill — the real
// incident, workload, verification and scoring run — and the runbook restores badly on purpose:
// every sabotage must FAIL for the right reason, and a correct restore must PASS.
//
// The runbook is this test binary again (TestSabotageRunbook), told what to do by
// PGDRILL_SABOTAGE: it restores with the real `pgdrill restore` and then does its damage.

const sabotageEnv = "PGDRILL_SABOTAGE"

func sabotageScenario(seed int, kind scenarios.IncidentKind) *scenarios.Scenario {
	GinkgoHelper()
	sc := smallScenario("shared", seed)
	sc.Spec.Incident.Kind = kind
	sc.Spec.Restore.Strategy = scenarios.RunbookStrategy
	sc.Spec.Restore.Runbook = &scenarios.Runbook{
		Command: fmt.Sprintf("%q -test.run='^TestSabotageRunbook$' -test.count=1", os.Args[0]),
		Timeout: scenarios.Duration(2 * time.Minute),
	}
	return sc
}

// drillWith runs a drill of wrong-id-deletion whose runbook does the given sabotage.
func drillWith(ctx context.Context, sabotage string, seed int) *drill.Outcome {
	GinkgoHelper()
	return drillOf(ctx, scenarios.WrongIDDeletion, sabotage, seed)
}

// drillOf runs a drill of the incident kind whose runbook does the given sabotage.
func drillOf(ctx context.Context, kind scenarios.IncidentKind, sabotage string, seed int) *drill.Outcome {
	GinkgoHelper()
	GinkgoT().Setenv(sabotageEnv, sabotage)
	GinkgoT().Setenv("PGDRILL_BIN", pgdrillBin)
	GinkgoT().Setenv("PGDRILL_STATE_DIR", provider.Store().Dir()) // the runbook attaches through it
	return drill.Run(ctx, drill.Config{Scenario: sabotageScenario(seed, kind), Provider: provider, Log: drilltest.DiscardLogger()})
}

var _ = Describe("the scorer, against sabotaged restores", Label(drilltest.Slow), func() {
	DescribeTable("passes a correct restore", func(ctx context.Context, seed int) {
		out := drillWith(ctx, "correct", seed)
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason+"\n"+runbookOutput(out))
	}, Entry("seed 11", 11), Entry("seed 12", 12), Entry("seed 13", 13))

	DescribeTable("fails a sabotaged one, for the right reason",
		func(ctx context.Context, sabotage string, check func(*drill.Outcome)) {
			out := drillWith(ctx, sabotage, 21)
			Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
			Expect(out.Affected).NotTo(BeEmpty(), "the drill verified: %s\n%s", out.Reason, runbookOutput(out))
			check(out)
		},
		Entry("that does nothing", "nothing", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeNumerically(">", 100))
			Expect(o.Reason).To(ContainSubstring("affected tenants are not as they must be"))
		}),
		Entry("that misses one row of one tenant", "miss-row", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeEquivalentTo(1))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeZero())
			Expect(o.Collateral).To(BeEmpty())
		}),
		Entry("that changes one cell", "change-cell", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeEquivalentTo(1))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeZero())
		}),
		Entry("that duplicates a row", "duplicate-row", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Duplicated })).To(BeEquivalentTo(1))
			Expect(o.Integrity).To(ContainElement(And(HaveField("Name", "schema"), HaveField("Passed", false))))
		}),
		Entry("that restores unaffected tenants over their newer writes", "overwrite-bystanders", func(o *drill.Outcome) {
			Expect(o.Collateral).NotTo(BeEmpty())
			Expect(o.Reason).To(ContainSubstring("unaffected tenant(s) differ"))
		}),
		Entry("that loses one acknowledged write of an unaffected tenant", "lose-bystander-write", func(o *drill.Outcome) {
			Expect(o.Collateral).To(HaveLen(1))
			Expect(o.Collateral[0].Missing).To(BeEquivalentTo(1))
			Expect(o.Collateral[0].Rows()).To(BeEquivalentTo(1))
			Expect(o.Measures[objective.Collateral].Number).To(BeEquivalentTo(1), "collateral is counted in rows")
			Expect(sum(o, func(t score.Tenant) int64 { return t.Lost })).To(BeZero())
		}),
		Entry("that changes an affected tenant's directory entry", "directory-changed", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeEquivalentTo(1))
			Expect(examples(o)).To(ContainElement(ContainSubstring("changed " + truth.DirectoryTable)))
			Expect(o.Collateral).To(BeEmpty())
		}),
		Entry("that deletes an unaffected tenant's directory entry", "bystander-directory-deleted", func(o *drill.Outcome) {
			Expect(o.Collateral).To(ConsistOf(And(HaveField("Table", truth.DirectoryTable), HaveField("Missing", BeEquivalentTo(1)))))
			Expect(failedCheck(o, "routing")).To(ContainSubstring("has no directory entry"))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Bad() })).To(BeZero())
		}),
		Entry("that routes an affected tenant to the wrong shard", "wrong-shard", func(o *drill.Outcome) {
			Expect(failedCheck(o, "routing")).To(MatchRegexp(`tenant \d+ is routed to shard \d+, but its rows are on shard \d+`))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeEquivalentTo(1))
		}),
		Entry("that drops an index", "index-dropped", func(o *drill.Outcome) {
			Expect(failedCheck(o, "schema")).To(MatchRegexp(`index issues_tenant_id_project_id_idx on shard \d is gone`))
			Expect(o.Schema).To(ConsistOf(HaveField("Change", "gone")))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Bad() })).To(BeZero(), "the rows are right; the schema is not")
		}),
		Entry("that retypes a column", "column-retyped", func(o *drill.Outcome) {
			Expect(failedCheck(o, "schema")).To(MatchRegexp(`column comments.created_at on shard \d changed type from timestamp with time zone to text`))
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeNumerically(">", 0), "a retyped value is a wrong row, whatever it prints")
		}),
		Entry("that plants a function shadowing the verifier's hash to hide a changed cell", "shadowing-function", func(o *drill.Outcome) {
			Expect(sum(o, func(t score.Tenant) int64 { return t.Wrong })).To(BeEquivalentTo(1))
			Expect(failedCheck(o, "schema")).To(MatchRegexp(`function hashtextextended\(text, integer\) on shard \d is new`))
		}),
	)
})

var _ = Describe("the scorer, against a blind restore", Label(drilltest.Slow), func() {
	It("counts the victims no ticket named as lost when a runbook restores only the reported tenants", func(ctx context.Context) {
		GinkgoT().Setenv(sabotageEnv, "reported-only")
		GinkgoT().Setenv("PGDRILL_BIN", pgdrillBin)
		GinkgoT().Setenv("PGDRILL_STATE_DIR", provider.Store().Dir())
		sc := sabotageScenario(41, scenarios.WrongIDDeletion)
		sc.Spec.Detection.Knowledge = scenarios.KnowledgeBlind
		out := drill.Run(ctx, drill.Config{Scenario: sc, Provider: provider, Log: drilltest.DiscardLogger()})
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason+"\n"+runbookOutput(out))
		Expect(out.Ticket).NotTo(BeNil(), "the runbook was handed a ticket")
		reported := out.Ticket.Tenants
		Expect(len(reported)).To(BeNumerically("<", len(out.Affected)), "the ticket names a few of the victims")
		for _, t := range out.Affected {
			if slices.Contains(reported, t.ID) {
				Expect(t.Complete()).To(BeTrue(), "reported tenant %d was restored: %+v", t.ID, t)
			} else {
				Expect(t.Complete()).To(BeFalse(), "unreported victim %d was not: %+v", t.ID, t)
				Expect(t.Lost).To(BeNumerically(">", 0), "its rows are lost: %+v", t)
			}
		}
		Expect(out.Collateral).To(BeEmpty())
		Expect(out.Reason).To(ContainSubstring("affected tenants are not as they must be"))
	})
})

var _ = Describe("the scorer, against a purge that should have been a soft delete", Label(drilltest.Slow), func() {
	It("passes a restore that brings the purged tenants back marked deleted", func(ctx context.Context) {
		out := drillOf(ctx, scenarios.PurgeNotSoftDelete, "correct", 31)
		Expect(out.Verdict).To(BeElementOf(score.Pass, score.PassWithConditions), out.Reason+"\n"+runbookOutput(out))
		Expect(out.Incident.Harms).To(HaveEach(HaveField("IntendedSoftDeleteMark", Not(BeZero()))))
	})

	It("fails one that brings them back live, as if nobody had deleted them", func(ctx context.Context) {
		out := drillOf(ctx, scenarios.PurgeNotSoftDelete, "unmark", 31)
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(sum(out, func(t score.Tenant) int64 { return t.Wrong })).To(BeNumerically(">", 10), "every row that should be marked")
		Expect(sum(out, func(t score.Tenant) int64 { return t.Lost })).To(BeZero())
		Expect(examples(out)).To(ContainElement(HavePrefix("changed ")))
	})
})

// examples lists the differing rows the affected tenants' scores name.
func examples(o *drill.Outcome) []string {
	var out []string
	for _, t := range o.Affected {
		out = append(out, t.Examples...)
	}
	return out
}

// failedCheck returns the detail of the named integrity check, which must have failed.
func failedCheck(o *drill.Outcome, name string) string {
	GinkgoHelper()
	for _, c := range o.Integrity {
		if c.Name == name {
			Expect(c.Passed).To(BeFalse(), "check %s: %s", name, c.Detail)
			return c.Detail
		}
	}
	Fail("no integrity check " + name)
	return ""
}

// runbookOutput is what the runbook printed, for failure messages.
func runbookOutput(o *drill.Outcome) string {
	if o.Restore == nil {
		return ""
	}
	return o.Restore.Output
}

func sum(o *drill.Outcome, f func(score.Tenant) int64) int64 {
	var n int64
	for _, t := range o.Affected {
		n += f(t)
	}
	return n
}

// TestSabotageRunbook is the runbook the sabotage specs plug in; it does nothing in a normal test
// run.
func TestSabotageRunbook(t *testing.T) {
	mode := os.Getenv(sabotageEnv)
	if mode == "" || os.Getenv(restore.IncidentFileEnv) == "" {
		t.Skip("only run as a drill's runbook")
	}
	ctx := context.Background()
	f, err := restore.ReadIncidentFile(os.Getenv(restore.IncidentFileEnv))
	if err != nil {
		t.Fatal(err)
	}
	if mode == "nothing" {
		return
	}
	if mode == "overwrite-bystanders" {
		overwriteBystanders(t, ctx, f)
		return
	}
	if mode == "reported-only" {
		restoreReportedOnly(t, f)
		return
	}
	if out, err := exec.Command(os.Getenv("PGDRILL_BIN"), "restore", "--strategy", "pitr-sidecar").CombinedOutput(); err != nil {
		t.Fatalf("pgdrill restore: %v: %s", err, out)
	}
	victim := f.Affected[0]
	shard := f.Shards[victim.Shard].DSN
	on := func(dsn, sql string, args ...any) {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	run := func(sql string, args ...any) { on(shard, sql, args...) }
	switch mode {
	case "correct":
	case "directory-changed":
		on(f.Catalog.DSN, `UPDATE tenants SET name = name || ' (restored)' WHERE tenant_id = $1`, victim.ID)
	case "bystander-directory-deleted":
		ids := make([]int64, len(f.Affected))
		for i, a := range f.Affected {
			ids[i] = a.ID
		}
		on(f.Catalog.DSN, `DELETE FROM tenants WHERE tenant_id = (SELECT min(tenant_id) FROM tenants WHERE NOT tenant_id = ANY($1))`, ids)
	case "wrong-shard":
		on(f.Catalog.DSN, `UPDATE tenants SET shard = (shard + 1) % $2 WHERE tenant_id = $1`, victim.ID, len(f.Shards))
	case "index-dropped":
		run(`DROP INDEX issues_tenant_id_project_id_idx`)
	case "column-retyped":
		run(`ALTER TABLE comments ALTER COLUMN created_at TYPE text`)
	case "shadowing-function":
		// The hash of the row the cell is in is computed, by a verifier that calls
		// hashtextextended(row::text, 0) unqualified, by this function instead: it puts the old
		// value back before hashing, so the changed row hashes as the right one did.
		var email string
		conn, err := pgx.Connect(ctx, shard)
		if err != nil {
			t.Fatal(err)
		}
		err = conn.QueryRow(ctx, `SELECT email FROM users WHERE tenant_id = $1 ORDER BY user_id LIMIT 1`, victim.ID).Scan(&email)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		run(`CREATE FUNCTION public.hashtextextended(text, integer) RETURNS bigint LANGUAGE sql IMMUTABLE
			AS $$ SELECT pg_catalog.hashtextextended(replace($1, 'sabotage@example.invalid', ` + quote(email) + `), $2) $$`)
		run(`UPDATE users SET email = 'sabotage@example.invalid' WHERE (tenant_id, user_id) = (SELECT tenant_id, min(user_id) FROM users WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "miss-row":
		run(`DELETE FROM comments WHERE (tenant_id, comment_id) = (SELECT tenant_id, min(comment_id) FROM comments WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "change-cell":
		run(`UPDATE users SET email = 'sabotage@example.invalid' WHERE (tenant_id, user_id) = (SELECT tenant_id, min(user_id) FROM users WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "duplicate-row":
		run(`ALTER TABLE comments DROP CONSTRAINT comments_pkey CASCADE`)
		run(`INSERT INTO comments SELECT * FROM comments WHERE (tenant_id, comment_id) = (SELECT tenant_id, min(comment_id) FROM comments WHERE tenant_id = $1 GROUP BY 1)`, victim.ID)
	case "lose-bystander-write":
		loseBystanderWrite(t, ctx, f)
	case "schema-miss-row", "schema-change-cell", "schema-duplicate-row", "schema-cross-tenant":
		schemaSabotage(t, ctx, f, mode)
	case "unmark":
		for _, h := range f.Record().Harms {
			for _, tbl := range fixtures.Builtin().TenantTables() {
				on(f.Shards[h.Shard].DSN, `UPDATE `+tbl.Name+` SET deleted_at = NULL WHERE tenant_id = ANY($1) AND deleted_at = $2`,
					h.Tenants, h.IntendedSoftDeleteMark)
			}
		}
	default:
		t.Fatalf("unknown sabotage %q", mode)
	}
}

// restoreReportedOnly is a responder who found the harm from a blind drill's ticket but brought
// back only the tenants the tickets named: `pgdrill locate`, then `pgdrill restore` of an incident
// file that names those alone.
func restoreReportedOnly(t *testing.T, f restore.IncidentFile) {
	if f.Ticket == nil {
		t.Fatal("not a blind drill's incident file: it names every victim")
	}
	tk := f.Ticket
	args := []string{"locate", "-o", "json", "--since", tk.From.Format(time.RFC3339Nano), "--until", tk.To.Format(time.RFC3339Nano)}
	for _, id := range tk.Tenants {
		args = append(args, "--tenant", strconv.FormatInt(id, 10))
	}
	out, err := exec.Command(os.Getenv("PGDRILL_BIN"), args...).Output()
	if err != nil {
		t.Fatalf("pgdrill locate: %v", err)
	}
	var found []drill.Finding
	if err := json.Unmarshal(out, &found); err != nil {
		t.Fatalf("read what pgdrill locate found: %v: %s", err, out)
	}
	rec := locate.Record(f.Record(), found)
	only := f
	only.Ticket, only.Affected, only.Harms = nil, nil, nil
	for _, a := range rec.Affected {
		if slices.Contains(tk.Tenants, a.ID) {
			only.Affected = append(only.Affected, a)
		}
	}
	for _, h := range rec.Harms {
		h.Tenants = slices.DeleteFunc(h.Tenants, func(id int64) bool { return !slices.Contains(tk.Tenants, id) })
		if len(h.Tenants) > 0 {
			only.Harms = append(only.Harms, h)
		}
	}
	path := filepath.Join(t.TempDir(), "reported-only.json")
	if err := restore.WriteIncidentFile(path, only); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Getenv("PGDRILL_BIN"), "restore", "--strategy", "pitr-sidecar")
	cmd.Env = append(os.Environ(), restore.IncidentFileEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgdrill restore: %v: %s", err, out)
	}
}

// quote writes s as an SQL string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// overwriteBystanders restores the victims and, with them, every unaffected tenant of their shards
// from the sidecar, preferring the backup's rows: the tenants' writes since the incident are lost.
func overwriteBystanders(t *testing.T, ctx context.Context, f restore.IncidentFile) {
	rec := f.Record()
	awaitBystanderWrite(t, ctx, f, rec.First())
	catalog, err := pgx.Connect(ctx, f.Catalog.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer catalog.Close(ctx)
	tenants, err := fixtures.ReadTenants(ctx, catalog)
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range tenants {
		if slices.ContainsFunc(rec.Harms, func(h incident.Harm) bool { return h.Shard == ct.Shard }) &&
			!slices.ContainsFunc(rec.Affected, func(a incident.Tenant) bool { return a.ID == ct.ID }) {
			rec.Affected = append(rec.Affected, incident.Tenant{ID: ct.ID, Shard: ct.Shard})
			for i := range rec.Harms {
				if rec.Harms[i].Shard == ct.Shard {
					rec.Harms[i].Tenants = append(rec.Harms[i].Tenants, ct.ID)
				}
			}
		}
	}
	p, err := local.New(ctx, local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Attach(ctx, f.RunID)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Destroy(ctx)
	_, err = restore.PITRSidecar{Policy: restore.PreferBackup}.Restore(ctx,
		restore.Env{Cluster: c, Protection: f.Protection(), Log: drilltest.DiscardLogger()}, rec)
	if err != nil {
		t.Fatal(err)
	}
}

// awaitBystanderWrite waits until the workload has written to an unaffected tenant after the
// incident: the write the sabotage then loses.
func awaitBystanderWrite(t *testing.T, ctx context.Context, f restore.IncidentFile, since time.Time) {
	var ids []int64
	for _, a := range f.Affected {
		ids = append(ids, a.ID)
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		for _, s := range f.Shards {
			conn, err := pgx.Connect(ctx, s.DSN)
			if err != nil {
				t.Fatal(err)
			}
			var written bool
			err = conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM comments WHERE comment_id >= $1 AND created_at > $2 AND NOT tenant_id = ANY($3))`,
				int64(workload.WorkloadIDBase), since, ids).Scan(&written)
			conn.Close(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if written {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // polling a real server; the runbook has no Gomega
	}
	t.Fatal("the workload wrote to no unaffected tenant within a minute of the incident")
}

// loseBystanderWrite deletes one comment the workload inserted into an unaffected tenant: one
// acknowledged write gone.
func loseBystanderWrite(t *testing.T, ctx context.Context, f restore.IncidentFile) {
	for _, s := range f.Shards {
		conn, err := pgx.Connect(ctx, s.DSN)
		if err != nil {
			t.Fatal(err)
		}
		var ids []int64
		for _, a := range f.Affected {
			ids = append(ids, a.ID)
		}
		tag, err := conn.Exec(ctx, `DELETE FROM comments WHERE (tenant_id, comment_id) = (
			SELECT tenant_id, comment_id FROM comments WHERE comment_id >= $1 AND NOT tenant_id = ANY($2)
			ORDER BY tenant_id, comment_id LIMIT 1)`, int64(workload.WorkloadIDBase), ids)
		conn.Close(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if tag.RowsAffected() == 1 {
			return
		}
	}
	t.Fatal("no workload write of an unaffected tenant to lose")
}
