package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gbytes"
	"github.com/onsi/gomega/gexec"

	"github.com/pgdrill/pgdrill/harness/cluster"
)

// smallDrill is a quick wrong-id-deletion drill.
const smallDrill = `apiVersion: pgdrill.dev/v1alpha1
kind: Scenario
metadata: {id: small, title: A small wrong-id deletion}
spec:
  hypothesis: The sidecar brings every deleted tenant back.
  seed: 4
  cluster: {shards: 2}
  dataset: {tenants: 12, rows: 5000}
  workload: {rate: 100}
  incident: {kind: wrong-id-deletion, after: 300ms, fraction: 0.25}
  detection: {delay: 200ms}
  objectives: [rto<=2m, rpo<=1s, completeness>=100%, collateral==0]
`

// pgdrill starts the binary with the suite's state dir.
func pgdrill(args ...string) *gexec.Session {
	GinkgoHelper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+stateDir, "PGDRILL_WORK_ROOT="+workRoot, "NO_COLOR=1")
	s, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	// Ctrl-C first, so a foreground `up` a failed assertion left running tears its cluster
	// down; SIGKILL only for what does not stop.
	DeferCleanup(func() {
		if s.Interrupt().Wait(teardownWait).ExitCode() == -1 {
			s.Kill().Wait(10 * time.Second)
		}
	})
	return s
}

// teardownWait is how long a stopped `pgdrill up` has to tear its cluster down.
const teardownWait = 2 * time.Minute

// finish runs pgdrill to its end and returns its session.
func finish(args ...string) *gexec.Session {
	GinkgoHelper()
	return pgdrill(args...).Wait(2 * time.Minute)
}

// upSmallGameDay starts a game day of smallDrill, written to a directory of its own, and returns
// that directory, the running `pgdrill up` and its cluster.
func upSmallGameDay() (string, *gexec.Session, cluster.Description) {
	GinkgoHelper()
	dir := GinkgoT().TempDir()
	file := filepath.Join(dir, "small.yaml")
	Expect(os.WriteFile(file, []byte(smallDrill), 0o600)).To(Succeed())
	up := pgdrill("up", "--scenario", file, "-o", "json")
	return dir, up, describeFrom(up)
}

// describeFrom waits for `up -o json` to print the cluster and decodes it.
func describeFrom(s *gexec.Session) cluster.Description {
	GinkgoHelper()
	Eventually(s.Out, time.Minute).Should(gbytes.Say(`(?m)^}$`))
	var d cluster.Description
	Expect(json.Unmarshal(s.Out.Contents(), &d)).To(Succeed())
	Expect(d.Shards).NotTo(BeEmpty())
	return d
}

func servers(d cluster.Description) []cluster.ServerInfo {
	return append([]cluster.ServerInfo{d.Catalog}, d.Shards...)
}

// count runs a counting query on a fresh connection.
func count(dsn, sql string) int64 {
	GinkgoHelper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	Expect(err).NotTo(HaveOccurred())
	defer conn.Close(ctx)
	var n int64
	Expect(conn.QueryRow(ctx, sql).Scan(&n)).To(Succeed())
	return n
}

func expectReachable(d cluster.Description) {
	GinkgoHelper()
	ctx := context.Background()
	for _, s := range servers(d) {
		conn, err := pgx.Connect(ctx, s.DSN)
		Expect(err).NotTo(HaveOccurred())
		_, err = conn.Exec(ctx, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
		Expect(err).NotTo(HaveOccurred())
		Expect(conn.Close(ctx)).To(Succeed())
	}
}

// expectGone asserts that no server process, port or directory of the run is left.
func expectGone(d cluster.Description) {
	GinkgoHelper()
	runDir := filepath.Dir(filepath.Dir(d.Catalog.DataDir))
	Expect(filepath.Base(runDir)).To(Equal(d.RunID))
	Expect(runDir).NotTo(BeADirectory())
	for _, s := range servers(d) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.Port), time.Second)
		if err == nil {
			c.Close()
		}
		Expect(err).To(HaveOccurred(), "port of %s should be closed", s.Name)
	}
	Expect(processesMentioning(runDir)).To(BeEmpty())
	Expect(filepath.Join(stateDir, d.RunID+".json")).NotTo(BeAnExistingFile())
}

func processesMentioning(s string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(data), s) {
			found = append(found, e.Name()+": "+strings.ReplaceAll(string(data), "\x00", " "))
		}
	}
	return found
}

var _ = Describe("pgdrill", func() {
	It("documents its commands, examples and exit codes", func() {
		s := finish("--help")
		Expect(s).To(gexec.Exit(0))
		Expect(s.Out).To(gbytes.Say("Examples:"))
		Expect(string(s.Out.Contents())).To(And(ContainSubstring("Exit codes:"),
			ContainSubstring("missed its objectives"), ContainSubstring("harness"), ContainSubstring("invalid input")))
		for _, sub := range []string{"up", "down", "ls", "scenarios", "doctor", "version"} {
			h := finish(sub, "--help")
			Expect(h).To(gexec.Exit(0))
			Expect(h.Out).To(gbytes.Say("Examples:"), sub)
		}
	})

	It("exits 2 on invalid input and starts nothing", func() {
		for _, args := range [][]string{{"up", "--shards", "0"}, {"up", "--layout", "sideways"}, {"up", "--tenants", "5", "--rows", "3"}, {"up", "--no-such-flag"}, {"up", "extra"},
			{"--output", "yaml", "ls"}, {"up", "--set", "bad name=1"}, {"down"}, {"down", "rnosuchrun"},
			{"run", "--knowledge", "psychic"}, {"locate", "--tenant", "1", "--since", "5m", "--intended", "archive"}} {
			s := finish(args...)
			Expect(s).To(gexec.Exit(2), "%v", args)
			Expect(s.Err).To(gbytes.Say("pgdrill: error: "))
		}
		Expect(finish("ls").Out).To(gbytes.Say("no live clusters"))
	})

	It("exits 3 with the fix when Postgres binaries are missing", func() {
		s := finish("up", "--pg-bin", GinkgoT().TempDir())
		Expect(s).To(gexec.Exit(3))
		Expect(s.Err).To(gbytes.Say("apt-get install postgresql"))
		d := finish("doctor", "--pg-bin", "/nonexistent")
		Expect(d).To(gexec.Exit(3))
		Expect(d.Out).To(gbytes.Say(`\[fail\] postgres binaries`))
	})

	It("passes doctor on this machine", func() {
		s := finish("doctor", "-o", "json")
		Expect(s).To(gexec.Exit(0))
		var checks []struct{ Name, Status string }
		Expect(json.Unmarshal(s.Out.Contents(), &checks)).To(Succeed())
		Expect(checks).To(ContainElement(And(HaveField("Name", "postgres binaries"), HaveField("Status", "ok"))))
	})

	It("lists, shows and validates scenarios, naming file, line and field of every problem", func() {
		list := finish("scenarios", "list")
		Expect(list).To(gexec.Exit(0))
		Expect(list.Out).To(gbytes.Say("wrong-id-deletion"))

		show := finish("scenarios", "show", "wrong-id-deletion")
		Expect(show).To(gexec.Exit(0))
		file := filepath.Join(GinkgoT().TempDir(), "mine.yaml")
		Expect(os.WriteFile(file, show.Out.Contents(), 0o600)).To(Succeed())
		Expect(finish("scenarios", "validate", file)).To(gexec.Exit(0), "what show prints is a valid scenario")

		bad := finish("scenarios", "validate", "../../scenarios/testdata/malformed.yaml")
		Expect(bad).To(gexec.Exit(2))
		Expect(bad.Err).To(gbytes.Say(`malformed\.yaml:10:13: spec\.cluster\.shards: `))
		Expect(bad.Err).To(gbytes.Say(`malformed\.yaml:15:5: spec\.dataset\.colour: unknown field`))
	})

	It("runs a drill end to end, writes its report and exits by its verdict", func() {
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "small.yaml")
		Expect(os.WriteFile(file, []byte(smallDrill), 0o600)).To(Succeed())
		out := filepath.Join(dir, "reports")
		By("equipping a scenario without standbys with one when --strategy delayed-standby asks for it, and saying so")
		s := pgdrill("run", file, "--out", out, "-o", "json", "--strategy", "delayed-standby").Wait(3 * time.Minute)
		Expect(s).To(gexec.Exit(0), string(s.Out.Contents()))
		var outcomes []struct {
			RunID    string `json:"run_id"`
			Verdict  string
			Seed     uint64
			Strategy string
			Notes    []string
		}
		Expect(json.Unmarshal(s.Out.Contents(), &outcomes)).To(Succeed())
		Expect(outcomes).To(HaveLen(1))
		Expect(outcomes[0].Verdict).To(BeElementOf("PASS", "PASS_WITH_CONDITIONS"))
		Expect(outcomes[0].Seed).To(BeEquivalentTo(4))
		Expect(outcomes[0].Strategy).To(Equal("delayed-standby"))
		Expect(outcomes[0].Notes).To(ConsistOf(ContainSubstring("standbyApplyDelay set to 5m0s")))
		report := filepath.Join(out, outcomes[0].RunID)
		Expect(filepath.Join(report, "report.json")).To(BeAnExistingFile())

		By("rendering a report again next to its report.json")
		Expect(os.Remove(filepath.Join(report, "summary.md"))).To(Succeed())
		Expect(finish("report", report)).To(gexec.Exit(0))
		Expect(filepath.Join(report, "summary.md")).To(BeAnExistingFile())
		Expect(filepath.Join(report, outcomes[0].RunID)).NotTo(BeAnExistingFile(), "not into a directory of its own")

		By("exiting 2 before anything starts when the strategy cannot restore the incident")
		broken := strings.Replace(smallDrill, "kind: wrong-id-deletion, after: 300ms, fraction: 0.25", "kind: shard-loss, after: 300ms, shard: 1", 1)
		Expect(os.WriteFile(file, []byte(broken), 0o600)).To(Succeed())
		s = finish("run", file, "--out", out)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Err).To(gbytes.Say("use one of full-shard-pitr"))
		Expect(finish("run", "wrong-id-deletion", "--strategy", "soft-delete-undo")).To(gexec.Exit(2),
			"an override gets the same checks as the file's own strategy")

		By("exiting 3, not 1, when the harness or its environment breaks")
		Expect(os.WriteFile(file, []byte(smallDrill), 0o600)).To(Succeed())
		Expect(finish("run", file, "--out", out, "--pg-bin", GinkgoT().TempDir())).To(gexec.Exit(3))

		By("exiting 2 for a scenario that does not exist")
		Expect(finish("run", "no-such-scenario")).To(gexec.Exit(2))
	})

	It("shows a failing runbook's output as it runs, and keeps all of it with the report", func() {
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "small.yaml")
		Expect(os.WriteFile(file, []byte(smallDrill), 0o600)).To(Succeed())
		out := filepath.Join(dir, "reports")
		s := pgdrill("run", file, "--out", out, "-o", "json", "--runbook", "echo restoring tenants; echo no backup found >&2; exit 3").Wait(3 * time.Minute)
		Expect(s).To(gexec.Exit(1), "the restore failed: the drill failed its objectives")
		Expect(string(s.Err.Contents())).To(And(ContainSubstring("runbook | restoring tenants"), ContainSubstring("no backup found")))
		var outcomes []struct {
			RunID   string `json:"run_id"`
			Runbook struct{ Tail string }
			Reason  string
		}
		Expect(json.Unmarshal(s.Out.Contents(), &outcomes)).To(Succeed())
		Expect(outcomes).To(HaveLen(1))
		Expect(outcomes[0].Runbook.Tail).To(ContainSubstring("no backup found"))
		Expect(outcomes[0].Reason).To(ContainSubstring("exit status 3"))
		log, err := os.ReadFile(filepath.Join(out, outcomes[0].RunID, "runbook.log"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(log)).To(And(ContainSubstring("restoring tenants"), ContainSubstring("no backup found")))
	})

	It("runs a game day: up from a scenario, incident, restore by hand, score, down", func() {
		dir, up, d := upSmallGameDay()

		By("paging the team")
		inc := finish("incident", d.RunID, "-o", "json")
		Expect(inc).To(gexec.Exit(0))
		var page struct{ Tenants []int64 }
		Expect(json.Unmarshal(inc.Out.Contents(), &page)).To(Succeed())
		Expect(page.Tenants).To(HaveLen(3))
		Expect(finish("incident", d.RunID)).To(gexec.Exit(2), "an incident happens once")

		By("locating every victim in the WAL from a ticket naming one of them")
		loc := finish("locate", "--tenant", strconv.FormatInt(page.Tenants[0], 10), "--since", "2m", d.RunID, "-o", "json")
		Expect(loc).To(gexec.Exit(0), string(loc.Err.Contents()))
		var found []struct {
			Harms []struct{ Tenants map[string]int }
		}
		Expect(json.Unmarshal(loc.Out.Contents(), &found)).To(Succeed())
		var located []int64
		for _, f := range found {
			for _, h := range f.Harms {
				for id := range h.Tenants {
					n, err := strconv.ParseInt(id, 10, 64)
					Expect(err).NotTo(HaveOccurred())
					located = append(located, n)
				}
			}
		}
		Expect(located).To(ConsistOf(page.Tenants), "the paged tenants, no more, found from one")
		Expect(finish("locate", "--tenant", "1", "--since", "soon", d.RunID)).To(gexec.Exit(2))

		By("restoring with a built-in step, then scoring")
		Expect(finish("restore", "--strategy", "pitr-sidecar", d.RunID)).To(gexec.Exit(0))
		score := finish("score", d.RunID, "--out", filepath.Join(dir, "reports"))
		Expect(score).To(gexec.Exit(0), string(score.Out.Contents()))
		Expect(score.Out).To(gbytes.Say(`(?m)^\S+ PASS  `), "PASS, not PASS_WITH_CONDITIONS")

		By("tearing it down through pgdrill down, which asks the game day's up to stop")
		Expect(finish("down", d.RunID)).To(gexec.Exit(0))
		Eventually(up, time.Minute).Should(gexec.Exit(0))
		expectGone(d)
	})

	It("lets a facilitator break things on a game day while the team restores, each fault timed and in the score", func() {
		dir, up, d := upSmallGameDay()
		Expect(finish("incident", d.RunID)).To(gexec.Exit(0))

		type outcome struct {
			ID          int
			State       string
			Confirmed   bool
			Healed      bool
			Description string
		}
		inject := func(args ...string) outcome {
			GinkgoHelper()
			s := finish(append([]string{"fault", "inject"}, append(args, d.RunID, "-o", "json")...)...)
			Expect(s).To(gexec.Exit(0), string(s.Err.Contents()))
			var o outcome
			Expect(json.Unmarshal(s.Out.Contents(), &o)).To(Succeed())
			Expect(o.Confirmed).To(BeTrue(), "seen to take effect before the command returns")
			return o
		}
		By("pausing the catalog for a moment and cutting the network to a shard, through the game day's fault proxy")
		paused := inject("pause", "--target", "catalog", "--for", "300ms")
		cut := inject("cut", "--target", "shard")
		Expect([]int{paused.ID, cut.ID}).To(Equal([]int{1, 2}))
		Expect(cut.Description).To(ContainSubstring("cut"))
		Eventually(func() []outcome {
			var faults []outcome
			Expect(json.Unmarshal(finish("fault", "list", d.RunID, "-o", "json").Out.Contents(), &faults)).To(Succeed())
			return faults
		}, 10*time.Second).Should(ConsistOf(HaveField("Healed", true), HaveField("Healed", false)), "the pause healed itself after 300ms")
		Expect(finish("fault", "heal", "2", d.RunID)).To(gexec.Exit(0))
		Expect(finish("fault", "heal", "2", d.RunID)).To(gexec.Exit(2), "healed once")

		By("refusing, unchanged, what cannot be injected here")
		s := finish("fault", "inject", "kill", "--target", "catalog", d.RunID)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Err).To(gbytes.Say("durable"))
		Expect(finish("fault", "inject", "restorer-crash", d.RunID)).To(gexec.Exit(2))
		Expect(finish("fault", "inject", "no-such-fault", d.RunID)).To(gexec.Exit(2))

		By("scoring the restore with the faults on its timeline")
		Expect(finish("restore", "--strategy", "pitr-sidecar", d.RunID)).To(gexec.Exit(0))
		score := finish("score", d.RunID, "--out", filepath.Join(dir, "reports"), "-o", "json")
		var rep struct {
			Verdict string
			Faults  []struct{ At string }
		}
		Expect(json.Unmarshal(score.Out.Contents(), &rep)).To(Succeed())
		Expect(rep.Verdict).To(BeElementOf("PASS", "PASS_WITH_CONDITIONS"), "a cut may leave a write's outcome unknown: a condition")
		Expect(rep.Faults).To(ConsistOf(HaveField("At", "by hand"), HaveField("At", "by hand")))
		up.Signal(syscall.SIGINT)
		Eventually(up, time.Minute).Should(gexec.Exit(0))
		expectGone(d)
	})

	It("runs a game day on a schema of one's own, named by its scenario", func() {
		dir := GinkgoT().TempDir()
		schema, err := os.ReadFile("../../scenarios/examples/tasks.sql")
		Expect(err).NotTo(HaveOccurred())
		Expect(os.WriteFile(filepath.Join(dir, "tasks.sql"), schema, 0o600)).To(Succeed())
		file := filepath.Join(dir, "own.yaml")
		Expect(smallDrill).To(ContainSubstring("  dataset: {tenants: 12, rows: 5000}\n"))
		Expect(os.WriteFile(file, []byte(strings.Replace(smallDrill, "  dataset: {tenants: 12, rows: 5000}",
			"  dataset: {tenants: 12, rows: 5000, schema: tasks.sql, tenantKey: account_id, tenantKeys: {accounts: id}}", 1)), 0o600)).To(Succeed())
		up := pgdrill("up", "--scenario", file, "-o", "json")
		d := describeFrom(up)
		Expect(count(d.Shards[0].DSN, "SELECT count(*) FROM tasks")).To(BeNumerically(">", 0), "the shards hold the schema's own tables")

		Expect(finish("incident", d.RunID)).To(gexec.Exit(0))
		Expect(finish("restore", "--strategy", "pitr-sidecar", d.RunID)).To(gexec.Exit(0))
		score := finish("score", d.RunID, "--out", filepath.Join(dir, "reports"))
		Expect(score).To(gexec.Exit(0), string(score.Out.Contents()))
		Expect(score.Out).To(gbytes.Say(`(?m)^\S+ PASS  `))

		Expect(finish("down", d.RunID)).To(gexec.Exit(0))
		Eventually(up, time.Minute).Should(gexec.Exit(0))
		expectGone(d)
	})

	It("scores a game day from what its pgdrill up kept, whatever the team edits", func() {
		dir, up, d := upSmallGameDay()
		inc := finish("incident", d.RunID, "-o", "json")
		Expect(inc).To(gexec.Exit(0))
		var page struct{ Tenants []int64 }
		Expect(json.Unmarshal(inc.Out.Contents(), &page)).To(Succeed())

		By("finding nothing in the game day's directory that scoring reads: only the socket and the team's copy of the incident")
		gameDir := filepath.Join(stateDir, "gamedays", d.RunID)
		entries, err := os.ReadDir(gameDir)
		Expect(err).NotTo(HaveOccurred())
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		Expect(names).To(ConsistOf("control.sock", "incident.json"))

		By("editing the incident file to claim nobody was harmed, and restoring nothing")
		Expect(os.WriteFile(filepath.Join(gameDir, "incident.json"), []byte(`{"version":1,"affected":[],"harms":[]}`), 0o600)).To(Succeed())
		score := finish("score", d.RunID, "--out", filepath.Join(dir, "reports"), "-o", "json")
		Expect(score).To(gexec.Exit(1), "the edit changes nothing: FAIL")
		var rep struct {
			Verdict  string
			Incident struct{ Affected []struct{ ID int64 } }
		}
		Expect(json.Unmarshal(score.Out.Contents(), &rep)).To(Succeed())
		Expect(rep.Verdict).To(Equal("FAIL"))
		Expect(rep.Incident.Affected).To(HaveLen(len(page.Tenants)), "scored against the tenants the incident really harmed")
		up.Signal(syscall.SIGINT)
		Eventually(up, time.Minute).Should(gexec.Exit(0))
		expectGone(d)
	})

	It("pages a blind game day with the ticket alone, and its restore locates the rest", func() {
		dir := GinkgoT().TempDir()
		file := filepath.Join(dir, "blind.yaml")
		Expect(os.WriteFile(file, []byte(strings.Replace(smallDrill, "detection: {delay: 200ms}", "detection: {delay: 200ms, knowledge: blind}", 1)), 0o600)).To(Succeed())
		up := pgdrill("up", "--scenario", file, "-o", "json")
		d := describeFrom(up)
		inc := finish("incident", d.RunID, "-o", "json")
		Expect(inc).To(gexec.Exit(0))
		var page struct{ Tenants []int64 }
		Expect(json.Unmarshal(inc.Out.Contents(), &page)).To(Succeed())
		Expect(page.Tenants).To(HaveLen(1), "a third of the 3 victims: what the tickets say")
		incidentFile, err := os.ReadFile(filepath.Join(stateDir, "gamedays", d.RunID, "incident.json"))
		Expect(err).NotTo(HaveOccurred())
		var handed struct {
			Affected []any
			Harms    []any
			Ticket   struct{ Tenants []int64 }
		}
		Expect(json.Unmarshal(incidentFile, &handed)).To(Succeed())
		Expect(handed.Affected).To(BeEmpty(), "the team's copy names no victims beyond the ticket")
		Expect(handed.Harms).To(BeEmpty())
		Expect(handed.Ticket.Tenants).To(Equal(page.Tenants))
		By("the team searching from the ticket, before restoring")
		search := finish("locate", "--tenant", strconv.FormatInt(page.Tenants[0], 10), "--since", "5m", d.RunID)
		Expect(search).To(gexec.Exit(0))
		Expect(search.Out).To(gbytes.Say(`victims: 3: `))
		Expect(finish("restore", "--strategy", "pitr-sidecar", d.RunID)).To(gexec.Exit(0))
		score := finish("score", d.RunID, "--out", filepath.Join(dir, "reports"))
		Expect(score).To(gexec.Exit(0), string(score.Out.Contents()))
		Expect(score.Out).To(gbytes.Say(`blind: from a ticket naming 1 tenant, located 3 of 3 victims`), "the score says what was found")
		Expect(string(score.Out.Contents())).To(MatchRegexp(`note: the team's search \(pgdrill locate, \d+s after the harm\): located 3 of 3 victims from 1 reported tenant`),
			"and what the team's own search found, and when")
		up.Signal(syscall.SIGINT)
		Eventually(up, time.Minute).Should(gexec.Exit(0))
		expectGone(d)
	})

	It("scores an unrestored game day as FAIL", func() {
		dir, up, d := upSmallGameDay()
		Expect(finish("incident", d.RunID)).To(gexec.Exit(0))
		score := finish("score", d.RunID, "--out", filepath.Join(dir, "reports"))
		Expect(score).To(gexec.Exit(1))
		Expect(score.Out).To(gbytes.Say(`(?m)^\S+ FAIL  `))
		up.Signal(syscall.SIGINT)
		Eventually(up, time.Minute).Should(gexec.Exit(0))
		expectGone(d)
	})

	It("prints its version", func() {
		Expect(finish("version").Out).To(gbytes.Say(`pgdrill \S+ go1\.`))
	})

	It("leaves a detached cluster running until `pgdrill down` removes all of it", func() {
		up := finish("up", "--detach", "--shards", "2", "-o", "json", "--tenants", "12", "--rows", "3000", "--seed", "7")
		Expect(up).To(gexec.Exit(0))
		d := describeFrom(up)
		DeferCleanup(func() { // a failed assertion below leaves nothing running
			down := exec.Command(binary, "down", d.RunID)
			down.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+stateDir, "PGDRILL_WORK_ROOT="+workRoot)
			_ = down.Run() // the spec's own down has removed it when it passed
		})
		Expect(d.Shards).To(HaveLen(2))
		var filled struct {
			Dataset struct{ Seed, Tenants, Rows int64 }
		}
		Expect(json.Unmarshal(up.Out.Contents(), &filled)).To(Succeed())
		Expect(filled.Dataset.Seed).To(BeEquivalentTo(7))
		Expect(count(d.Catalog.DSN, "SELECT count(*) FROM tenants")).To(BeEquivalentTo(12))
		var rows int64
		for _, s := range d.Shards {
			rows += count(s.DSN, "SELECT (SELECT count(*) FROM sites) + (SELECT count(*) FROM users) + (SELECT count(*) FROM app_installations) + (SELECT count(*) FROM projects) + (SELECT count(*) FROM issues) + (SELECT count(*) FROM comments) + (SELECT count(*) FROM attachments)")
		}
		Expect(rows).To(BeEquivalentTo(3000))
		expectReachable(d)
		Expect(finish("ls").Out).To(gbytes.Say(d.RunID + `\s+local\s+detached`))

		down := finish("down", d.RunID)
		Expect(down).To(gexec.Exit(0))
		Expect(down.Out).To(gbytes.Say("removed " + d.RunID))
		expectGone(d)
	})

	DescribeTable("tears everything down when a foreground up is stopped",
		func(extra []string, stop func(*gexec.Session)) {
			up := pgdrill(append([]string{"up", "--shards", "1", "-o", "json", "--tenants", "0"}, extra...)...)
			d := describeFrom(up)
			expectReachable(d)
			stop(up)
			Eventually(up, time.Minute).Should(gexec.Exit(0))
			expectGone(d)
		},
		Entry("by Ctrl-C", nil, func(s *gexec.Session) { s.Signal(syscall.SIGINT) }),
		Entry("by SIGTERM", nil, func(s *gexec.Session) { s.Signal(syscall.SIGTERM) }),
		Entry("by --for running out", []string{"--for", "2s"}, func(*gexec.Session) {}),
	)

	It("reaps what a SIGKILLed pgdrill up left, with down --all or at the next start", func() {
		for _, reap := range []func(){
			func() { Expect(finish("down", "--all")).To(gexec.Exit(0)) },
			func() { Expect(finish("up", "--shards", "1", "--for", "10ms", "--tenants", "0")).To(gexec.Exit(0)) },
		} {
			up := pgdrill("up", "--shards", "2", "-o", "json", "--tenants", "0")
			d := describeFrom(up)
			up.Kill().Wait(10 * time.Second)
			expectReachable(d) // the servers outlive their killed owner...
			Expect(finish("ls").Out).To(gbytes.Say(d.RunID + `\s+local\s+orphaned`))
			reap()
			expectGone(d) // ...until they are reaped
		}
	})

	It("finds and reaps, with down --all, what a killed pgdrill recorded in another state dir", func() {
		other := GinkgoT().TempDir() // a test suite's own, say, removed with it
		up := exec.Command(binary, "up", "--shards", "1", "-o", "json", "--tenants", "0")
		up.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+other, "PGDRILL_WORK_ROOT="+workRoot)
		s, err := gexec.Start(up, GinkgoWriter, GinkgoWriter)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { s.Kill().Wait(10 * time.Second) })
		d := describeFrom(s)
		s.Kill().Wait(10 * time.Second)
		Expect(os.RemoveAll(other)).To(Succeed(), "its records are gone with the state dir")
		expectReachable(d)
		Expect(finish("ls").Out).To(gbytes.Say(d.RunID+`\s+local\s+orphaned`), "found under the work root")
		down := finish("down", "--all")
		Expect(down).To(gexec.Exit(0))
		Expect(down.Out).To(gbytes.Say("removed " + d.RunID))
		expectGone(d)
	})

	It("installs the Debian packages a make target needs, or names the exact apt-get line", func() {
		script, err := filepath.Abs("../../.ci/deps")
		Expect(err).NotTo(HaveOccurred())
		Expect(exec.Command(script, "postgresql-15").Run()).To(Succeed(), "nothing to do when it is installed")
		cmd := exec.Command(script, "postgresql-15", "pgdrill-no-such-package")
		cmd.Env = append(os.Environ(), "PGDRILL_NO_INSTALL=1") // as root it would install: only be told
		out, err := cmd.CombinedOutput()
		Expect(err).To(HaveOccurred(), "it stops at once: %s", out)
		Expect(string(out)).To(ContainSubstring("sudo apt-get install -y --no-install-recommends pgdrill-no-such-package\n"),
			"the missing package only, in a line to paste")
	})
})

var _ = Describe("pgdrill schema inspect", func() {
	It("explains a schema file: tenant tables and how rows find their tenant, reference tables, foreign keys, fill order", func() {
		s := finish("schema", "inspect", "../../scenarios/examples/tasks.sql", "--tenant-key", "account_id", "--tenant-keys", "accounts=id")
		Expect(s).To(gexec.Exit(0))
		out := string(s.Out.Contents())
		Expect(out).To(ContainSubstring("can be drilled"))
		Expect(out).To(MatchRegexp(`comments +key \(id\); owned through comments → \w+\.account_id`))
		Expect(out).To(MatchRegexp(`(?s)reference tables.*\n  plans +key \(code\)`))
		Expect(out).To(ContainSubstring("tasks(parent_id) → tasks(id)  [nullable, self-reference: a tree]"))
		Expect(out).To(ContainSubstring("fill order: plans, accounts, users"))

		js := finish("schema", "inspect", "../../scenarios/examples/tasks.sql", "--tenant-key", "account_id", "--tenant-keys", "accounts=id", "-o", "json")
		Expect(js).To(gexec.Exit(0))
		var m struct {
			Name   string
			Tables []struct {
				Name  string
				Owner struct{ Kind string }
			}
		}
		Expect(json.Unmarshal(js.Out.Contents(), &m)).To(Succeed())
		Expect(m.Name).To(Equal("tasks"))
		Expect(m.Tables).To(HaveLen(8))
	})

	It("refuses, with exit code 2 and why, a schema it cannot drill", func() {
		file := filepath.Join(GinkgoT().TempDir(), "notes.sql")
		Expect(os.WriteFile(file, []byte("CREATE TABLE notes (id bigint, body text);"), 0o644)).To(Succeed())
		s := finish("schema", "inspect", file)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Out).To(gbytes.Say("refused: table notes: has no primary key"))
		bad := filepath.Join(GinkgoT().TempDir(), "typo.sql")
		Expect(os.WriteFile(bad, []byte("CREATE TABLE notes (id bigint PRIMARY KEY, body txet);"), 0o644)).To(Succeed())
		s = finish("schema", "inspect", bad)
		Expect(s).To(gexec.Exit(2))
		Expect(s.Err).To(gbytes.Say(`type "txet" does not exist`))
	})

	It("reads a live database's schema in a read-only session, without its data", func() {
		up := finish("up", "--detach", "--shards", "1", "-o", "json", "--tenants", "4", "--rows", "1000", "--seed", "3")
		Expect(up).To(gexec.Exit(0))
		d := describeFrom(up)
		DeferCleanup(func() { // not through pgdrill(), which would register a cleanup inside this one
			down := exec.Command(binary, "down", d.RunID)
			down.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+stateDir, "PGDRILL_WORK_ROOT="+workRoot)
			out, err := down.CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), "%s", out)
		})
		scans := "SELECT sum(seq_scan + coalesce(idx_scan, 0))::int8 FROM pg_stat_user_tables"
		before := count(d.Shards[0].DSN, scans)
		s := finish("schema", "inspect", "--from", d.Shards[0].DSN)
		Expect(s).To(gexec.Exit(0))
		Expect(s.Out).To(gbytes.Say(`sites +key \(tenant_id, site_id\); tenant in column tenant_id`))
		Expect(string(s.Out.Contents())).NotTo(ContainSubstring("pgdrill_meta"), "the marker is pgdrill's, not the schema's")
		// A backend's table statistics reach the views when it exits: watched for a while after.
		Consistently(func() int64 { return count(d.Shards[0].DSN, scans) }, 2*time.Second, 200*time.Millisecond).
			Should(Equal(before), "no table was scanned")
	})
})
