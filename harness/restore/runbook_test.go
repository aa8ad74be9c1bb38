package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/fixtures"
	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/incident"
	"github.com/pgdrill/pgdrill/harness/restore"
)

var _ = Describe("runbook", func() {
	It("hands the command the incident's facts in its environment and the incident file", func(ctx context.Context) {
		d := newDrill(ctx, fixtures.LayoutShared, 2)
		victims := d.victims(1)
		rec, err := incident.DeleteTenants(ctx, d.c, "wrong-id-deletion", victims)
		Expect(err).NotTo(HaveOccurred())

		By("running a runbook that keeps what it was given")
		out := GinkgoT().TempDir()
		res, err := restore.Runbook{Dir: out, Command: `set -e
			env | grep '^PGDRILL_' > got-env
			cp "$PGDRILL_INCIDENT_FILE" got-incident.json
			touch "$PGDRILL_WORKDIR/scratch"
			pwd -P > got-pwd
			echo restored`}.Restore(ctx, d.env(), rec)
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Strategy).To(Equal("runbook"))
		Expect(res.Output).To(Equal("restored\n"))
		Expect(res.Phases).To(ConsistOf(And(HaveField("Name", restore.PhaseRunbook), HaveField("Shard", restore.AllShards))))
		Expect(res.Phases[0].Duration()).To(BeNumerically(">", 0))
		Expect(res.Tenants).To(BeEmpty(), "what a runbook restored is for the verification to find")
		Expect(readFile(filepath.Join(out, "got-pwd"))).To(Equal(evalSymlinks(out) + "\n"))

		By("checking the environment")
		env := map[string]string{}
		for line := range strings.Lines(readFile(filepath.Join(out, "got-env"))) {
			k, v, _ := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
			env[k] = v
		}
		Expect(env).To(HaveKeyWithValue(restore.CatalogDSNEnv, d.c.Catalog().DSN()))
		Expect(env).To(HaveKeyWithValue(restore.AffectedTenantsEnv,
			fmt.Sprintf("%d,%d", rec.Affected[0].ID, rec.Affected[1].ID)))
		Expect(env).To(HaveKey(restore.IncidentFileEnv))
		Expect(env).To(HaveKey(restore.WorkDirEnv))
		Expect(filepath.Join(env[restore.WorkDirEnv], "scratch")).NotTo(BeAnExistingFile(), "the scratch dir is removed")
		Expect(env[restore.WorkDirEnv]).NotTo(BeADirectory())
		Expect(env[restore.IncidentFileEnv]).NotTo(BeAnExistingFile())

		By("checking the incident file")
		raw := readFile(filepath.Join(out, "got-incident.json"))
		for _, key := range []string{`"run_id"`, `"layout"`, `"affected"`, `"catalog"`, `"dsn"`, `"xid"`, `"lsn"`,
			`"recover_to"`, `"time"`, `"wal_archive"`, `"base_backup"`, `"location"`} {
			Expect(raw).To(ContainSubstring(key), "a script can grep for %s", key)
		}
		f, err := restore.ReadIncidentFile(filepath.Join(out, "got-incident.json"))
		Expect(err).NotTo(HaveOccurred())
		want := rec
		want.Harms = slices.Clone(rec.Harms)
		for i := range want.Harms {
			want.Harms[i].Noted = time.Time{} // the harness's clock stays in its process
		}
		Expect(f.Record()).To(Equal(want))
		Expect(f.RunID).To(Equal(d.c.RunID()))
		Expect(f.Layout).To(Equal(fixtures.LayoutShared))
		Expect(f.Catalog.DSN).To(Equal(d.c.Catalog().DSN()))
		Expect(f.Shards).To(HaveLen(2))
		for i, s := range d.c.Shards() {
			Expect(f.Shards[i].Index).To(Equal(i))
			Expect(f.Shards[i].DSN).To(Equal(s.DSN()))
			Expect(f.Shards[i].WALArchive).NotTo(BeEmpty())
			Expect(f.Shards[i].WALArchive).To(Equal(s.Info().WALArchive))
			Expect(f.Shards[i].BaseBackup).NotTo(BeNil())
			Expect(f.Shards[i].BaseBackup.Location).To(Equal(d.prot.Backups[i].Location))
		}
		Expect(f.Protection().Backups).To(Equal(d.prot.Backups))
		Expect(f.Harms).To(HaveLen(2))
		for _, h := range f.Harms {
			Expect(h.XID).NotTo(BeEmpty())
			Expect(h.LSN).NotTo(BeEmpty())
			Expect(h.RecoverTo).To(Equal(cluster.RecoveryTarget{XID: h.XID}))
			Expect(h.Time).NotTo(BeZero())
		}
	})

	Describe("ending badly", Ordered, func() {
		var env restore.Env
		var rec incident.Record
		BeforeAll(func(ctx context.Context) { env, rec = runbookDrill(ctx) })

		It("reports a non-zero exit with its status, keeping the output", func(ctx context.Context) {
			res, err := restore.Runbook{Command: "echo to-stdout; echo to-stderr >&2; exit 3"}.Restore(ctx, env, rec)
			Expect(err).To(MatchError(ContainSubstring("exit status 3")))
			Expect(res.Output).To(Equal("to-stdout\nto-stderr\n"))
			Expect(res.Phases).To(ConsistOf(HaveField("Name", restore.PhaseRunbook)))
		})

		It("stops a runbook that outlives its timeout, and everything it started", func(ctx context.Context) {
			r := newHangingRunbook("")
			r.Timeout = time.Second
			start := time.Now()
			_, err := r.Restore(ctx, env, rec)
			Expect(err).To(MatchError(ContainSubstring("timed out after 1s")))
			Expect(time.Since(start)).To(BeNumerically("<", 5*time.Second))
			r.expectGone()
		})

		It("kills a runbook that ignores SIGTERM once the grace period is over", func(ctx context.Context) {
			r := newHangingRunbook("trap '' TERM;")
			r.Timeout = time.Second
			_, err := r.Restore(ctx, env, rec)
			Expect(err).To(MatchError(ContainSubstring("timed out after 1s")))
			r.expectGone()
		})

		It("stops a runbook when the restore is cancelled", func(ctx context.Context) {
			r := newHangingRunbook("")
			cctx, cancel := context.WithCancel(ctx)
			time.AfterFunc(time.Second, cancel)
			_, err := r.Restore(cctx, env, rec)
			Expect(err).To(MatchError(context.Canceled))
			r.expectGone()
		})

		It("kills what a successful runbook left running in the background", func(ctx context.Context) {
			r := newHangingRunbook("")
			r.Command = strings.Replace(r.Command, "; wait", "", 1)
			_, err := r.Restore(ctx, env, rec)
			Expect(err).NotTo(HaveOccurred())
			r.expectGone()
		})

		It("keeps the end of a long output", func(ctx context.Context) {
			res, err := restore.Runbook{Command: `head -c 1100000 /dev/zero | tr '\0' x; echo; echo END`}.Restore(ctx, env, rec)
			Expect(err).NotTo(HaveOccurred())
			Expect(res.Output).To(HaveSuffix("x\nEND\n"))
			Expect(res.Output).To(HavePrefix("[pgdrill: the first 51429 bytes of output are left out]\n"))
			Expect(len(res.Output)).To(BeNumerically("<=", restore.MaxOutput+100))
		})

		It("refuses an empty command", func(ctx context.Context) {
			_, err := restore.Runbook{Command: " "}.Restore(ctx, env, rec)
			Expect(err).To(MatchError(ContainSubstring("no command")))
		})
	})
})

// hangingRunbook starts a background sleep and waits for it, writing both pids down.
type hangingRunbook struct {
	restore.Runbook
	pids   string
	marker string
}

// newHangingRunbook returns a runbook that runs prelude, then hangs in a sleep it started.
func newHangingRunbook(prelude string) hangingRunbook {
	GinkgoHelper()
	marker := fmt.Sprintf("pgdrill-spec-%d-%d", os.Getpid(), time.Now().UnixNano())
	pids := filepath.Join(GinkgoT().TempDir(), "pids")
	return hangingRunbook{pids: pids, marker: marker, Runbook: restore.Runbook{
		Command: fmt.Sprintf(`%s : %s; echo $$ > '%s'; sleep 600 & echo $! >> '%s'; wait`, prelude, marker, pids, pids)}}
}

// expectGone checks that neither the runbook's shell nor its sleep runs any more.
func (r hangingRunbook) expectGone() {
	GinkgoHelper()
	lines := strings.Fields(readFile(r.pids))
	Expect(lines).To(HaveLen(2), "the runbook wrote its shell's and its sleep's pids")
	for _, l := range lines {
		pid, err := strconv.Atoi(l)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() bool { return running(pid) }).Should(BeFalse(), "process %d is still running", pid)
	}
	Expect(withMarker(r.marker)).To(BeEmpty(), "no process of the runbook's command is left")
}

// running reports whether a process runs: it exists and is not a zombie waiting to be reaped.
func running(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(stat, ')') // the state follows the parenthesised command name
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// withMarker lists the running processes whose command line contains marker.
func withMarker(marker string) []int {
	GinkgoHelper()
	entries, err := os.ReadDir("/proc")
	Expect(err).NotTo(HaveOccurred())
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(marker)) && running(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func readFile(path string) string {
	GinkgoHelper()
	data, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	return string(data)
}

func evalSymlinks(path string) string {
	GinkgoHelper()
	p, err := filepath.EvalSymlinks(path)
	Expect(err).NotTo(HaveOccurred())
	return p
}
