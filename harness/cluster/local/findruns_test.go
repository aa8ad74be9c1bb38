package local_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// ownClusterEnv, set, makes the suite's test binary a pgdrill to be killed instead of running
// the specs: see ownCluster.
const ownClusterEnv = "PGDRILL_SPEC_OWN_CLUSTER"

// ownCluster creates a one-shard cluster on the work root and state dir named by
// PGDRILL_WORK_ROOT and PGDRILL_STATE_DIR, prints its run id and waits to be killed, as a
// `go test` or `make bench` stopped with Ctrl-C leaves its servers. Not killed within a minute
// (its spec failed), it tears the cluster down itself.
func ownCluster(t *testing.T) {
	ctx := context.Background()
	p, err := local.New(ctx, local.WithLogger(drilltest.DiscardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Create(ctx, cluster.Spec{Shards: 1})
	if err != nil {
		if c != nil {
			_ = c.Destroy(ctx)
		}
		t.Fatal(err)
	}
	fmt.Println(c.RunID())
	time.Sleep(time.Minute)
	_ = c.Destroy(ctx)
}

var _ = Describe("finding runs under the work root", func() {
	It("finds a killed run whatever state dir recorded it, and the next provider reaps it", func(ctx context.Context) {
		workRoot, err := os.MkdirTemp(provider.WorkRoot(), "w") // short enough for socket paths, in memory
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(os.RemoveAll, workRoot)
		Expect(os.Chmod(workRoot, 0o755)).To(Succeed(), "the run user passes through it")
		stateA, stateB := filepath.Join(GinkgoT().TempDir(), "a"), filepath.Join(GinkgoT().TempDir(), "b")

		By("creating a cluster in another pgdrill process, recording it in state dir A")
		owner := exec.Command(os.Args[0], "-test.run=^TestLocal$")
		owner.Env = append(os.Environ(), ownClusterEnv+"=1", "PGDRILL_WORK_ROOT="+workRoot, "PGDRILL_STATE_DIR="+stateA)
		owner.Stderr = GinkgoWriter
		out, err := owner.StdoutPipe()
		Expect(err).NotTo(HaveOccurred())
		Expect(owner.Start()).To(Succeed())
		DeferCleanup(func() { _ = owner.Process.Kill(); _ = owner.Wait() })
		lines := make(chan string, 1)
		go func() {
			s := bufio.NewScanner(out)
			for s.Scan() {
				lines <- s.Text()
			}
			close(lines)
		}()
		var runID string
		Eventually(lines, time.Minute).Should(Receive(&runID))
		Expect(runID).To(MatchRegexp(`^r[0-9a-f]{8}$`), "the owner printed its run id")
		storeA, err := runstate.Open(stateA)
		Expect(err).NotTo(HaveOccurred())
		rec, err := storeA.Load(runID)
		Expect(err).NotTo(HaveOccurred())
		f := footprintFrom(rec)
		Expect(f.procs).To(HaveLen(2))
		Expect(f.runDir).To(Equal(filepath.Join(workRoot, runID)))

		By("killing it, so that it tears nothing down")
		Expect(owner.Process.Signal(syscall.SIGKILL)).To(Succeed())
		_ = owner.Wait()
		for _, p := range f.procs {
			Expect(p.Alive()).To(BeTrue(), "its server %d outlives it", p.PID)
		}

		By("finding it from state dir B, as `pgdrill down --all` would")
		storeB, err := runstate.Open(stateB)
		Expect(err).NotTo(HaveOccurred())
		recs, err := local.FindRuns(workRoot, storeB)
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).To(ConsistOf(And(HaveField("RunID", runID), HaveField("Servers", HaveLen(2)))))
		Expect(recs[0].Orphaned()).To(BeTrue())

		By("starting a provider with state dir B on the same work root")
		_, err = local.New(ctx, local.WithWorkRoot(workRoot), local.WithStateDir(stateB), local.WithLogger(drilltest.DiscardLogger()))
		Expect(err).NotTo(HaveOccurred())
		expectGone(f)
		recs, err = local.FindRuns(workRoot, storeB)
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).To(BeEmpty())
	})

	It("believes a run directory's record only when this account wrote it and it stays inside", func(ctx context.Context) {
		By("starting a process that a forged record could name: a group leader with the forged data dir on its command line")
		bystander := exec.Command("sleep", "300")
		bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		Expect(bystander.Start()).To(Succeed())
		DeferCleanup(func() { _ = bystander.Process.Kill(); _ = bystander.Wait() })
		bystanderID, err := runstate.Identify(bystander.Process.Pid)
		Expect(err).NotTo(HaveOccurred())

		workRoot := GinkgoT().TempDir()
		dir := filepath.Join(workRoot, "rfeedbeef")
		Expect(os.Mkdir(dir, 0o700)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(dir, ".pgdrill-run"), []byte("rfeedbeef"), 0o600)).To(Succeed())
		copyInDir := runstate.OpenUntrusted(dir)
		dead := runstate.Process{PID: 1 << 22, StartTime: 1}
		rec := runstate.Record{RunID: "rfeedbeef", Provider: local.ProviderName, Owner: dead, Dirs: []string{dir},
			Servers: []runstate.ServerRecord{{Name: "shard-0", Process: bystanderID, DataDir: filepath.Join(dir, "shard-0", "data")}}}
		Expect(copyInDir.Save(rec)).To(Succeed())
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		Expect(err).NotTo(HaveOccurred())
		Expect(files).To(HaveLen(1))
		stateDir, err := runstate.Open(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())

		By("finding the run by the copy this account wrote")
		recs, err := local.FindRuns(workRoot, stateDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).To(ConsistOf(HaveField("RunID", "rfeedbeef")))

		By("refusing a copy anyone may have written")
		Expect(os.Chmod(files[0], 0o666)).To(Succeed())
		recs, err = local.FindRuns(workRoot, stateDir)
		Expect(err).To(MatchError(runstate.ErrUntrusted))
		Expect(recs).To(BeEmpty())
		Expect(os.Chmod(files[0], 0o600)).To(Succeed())

		By("refusing a copy naming a data directory outside the run's, and reaping nothing by it")
		rec.Servers[0].DataDir = "300" // what the bystander's command line holds
		Expect(copyInDir.Save(rec)).To(Succeed())
		recs, err = local.FindRuns(workRoot, stateDir)
		Expect(err).To(MatchError(ContainSubstring("is outside it; ignored")))
		Expect(recs).To(BeEmpty())
		reaped, err := local.ReapOrphans(ctx, workRoot, stateDir, drilltest.DiscardLogger())
		Expect(err).To(HaveOccurred())
		Expect(reaped).To(BeEmpty())
		Expect(bystanderID.Alive()).To(BeTrue(), "a process pgdrill did not start is never signalled")
		Expect(dir).To(BeADirectory())

		By("ignoring a directory marked for another run")
		Expect(os.WriteFile(filepath.Join(dir, ".pgdrill-run"), []byte("rother"), 0o600)).To(Succeed())
		recs, err = local.FindRuns(workRoot, stateDir)
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).To(BeEmpty())
	})
})
