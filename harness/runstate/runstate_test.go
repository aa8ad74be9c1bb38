package runstate_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

var _ = Describe("process identity", func() {
	It("knows this process, and tells a reused pid from the original", func() {
		self, err := runstate.Self()
		Expect(err).NotTo(HaveOccurred())
		Expect(self.Alive()).To(BeTrue())
		impostor := self
		impostor.StartTime++
		Expect(impostor.Alive()).To(BeFalse(), "same pid, other start time: not the same process")
	})

	It("sees an exited child as gone, zombie or not", func() {
		cmd := exec.Command("sleep", "0.01")
		Expect(cmd.Start()).To(Succeed())
		p, err := runstate.Identify(cmd.Process.Pid)
		Expect(err).NotTo(HaveOccurred())
		Eventually(p.Alive).Should(BeFalse()) // a zombie until waited for
		Expect(cmd.Wait()).To(Succeed())
		Expect(p.Alive()).To(BeFalse())
	})

	It("lists a process's descendants", func() {
		cmd := startTree("sleep 30 & sleep 30 & wait")
		Eventually(func() []int { return runstate.Descendants(cmd.Process.Pid) }).Should(HaveLen(2))
	})

	It("lists a process's children, not theirs", func() {
		cmd := startTree("sh -c 'sleep 30 & wait' & wait")
		Eventually(func() []int { return runstate.Descendants(cmd.Process.Pid) }).Should(HaveLen(2))
		children := runstate.Children(cmd.Process.Pid)
		Expect(children).To(HaveLen(1))
		Expect(runstate.Children(children[0])).To(HaveLen(1))
	})
})

var _ = Describe("the store", func() {
	var store *runstate.Store
	BeforeEach(func() {
		var err error
		store, err = runstate.Open(filepath.Join(GinkgoT().TempDir(), "state"))
		Expect(err).NotTo(HaveOccurred())
	})

	It("saves, lists oldest first, loads and removes records", func() {
		self, _ := runstate.Self()
		older := runstate.Record{RunID: "rold", Provider: "local", Owner: self, Created: time.Now().Add(-time.Hour)}
		newer := runstate.Record{RunID: "rnew", Provider: "local", Owner: self, Created: time.Now(), Detached: true}
		Expect(store.Save(newer)).To(Succeed())
		Expect(store.Save(older)).To(Succeed())
		recs, err := store.List()
		Expect(err).NotTo(HaveOccurred())
		Expect(recs).To(HaveLen(2))
		Expect(recs[0].RunID).To(Equal("rold"))
		Expect(recs[0].Orphaned()).To(BeFalse(), "its owner (this process) is alive")
		loaded, err := store.Load("rnew")
		Expect(err).NotTo(HaveOccurred())
		Expect(loaded.Detached).To(BeTrue())
		Expect(store.Remove("rnew")).To(Succeed())
		Expect(store.Remove("rnew")).To(Succeed(), "removing twice is fine")
		_, err = store.Load("rnew")
		Expect(err).To(MatchError(runstate.ErrUnknownRun))
	})

	It("calls a non-detached run whose owner died orphaned, and a detached one not", func() {
		dead := runstate.Process{PID: 1 << 22, StartTime: 1}
		Expect(runstate.Record{RunID: "r1", Owner: dead}.Orphaned()).To(BeTrue())
		Expect(runstate.Record{RunID: "r1", Owner: dead, Detached: true}.Orphaned()).To(BeFalse())
	})

	It("refuses run ids that could escape the state directory", func() {
		Expect(store.Save(runstate.Record{RunID: "../evil"})).To(MatchError(ContainSubstring("invalid run id")))
		Expect(store.Save(runstate.Record{RunID: ""})).To(HaveOccurred())
	})

	It("uses PGDRILL_STATE_DIR, then XDG_STATE_HOME", func() {
		GinkgoT().Setenv("PGDRILL_STATE_DIR", "/x/state")
		Expect(runstate.DefaultDir()).To(Equal("/x/state"))
		GinkgoT().Setenv("PGDRILL_STATE_DIR", "")
		GinkgoT().Setenv("XDG_STATE_HOME", "/x/xdg")
		Expect(runstate.DefaultDir()).To(Equal("/x/xdg/pgdrill"))
	})
})

var _ = Describe("a store in a directory another account can write to", func() {
	var dir string
	var store *runstate.Store
	var path string
	BeforeEach(func() {
		dir = GinkgoT().TempDir()
		store = runstate.OpenUntrusted(dir)
		Expect(store.Save(runstate.Record{RunID: "rcopy", Provider: "local"})).To(Succeed())
		path = filepath.Join(dir, "rcopy.json")
		Expect(path).To(BeAnExistingFile())
	})

	It("believes a record file this account wrote and no one else can change", func() {
		rec, err := store.Load("rcopy")
		Expect(err).NotTo(HaveOccurred())
		Expect(rec.Provider).To(Equal("local"))
	})

	It("refuses a record file its group or others may write", func() {
		Expect(os.Chmod(path, 0o620)).To(Succeed())
		_, err := store.Load("rcopy")
		Expect(err).To(MatchError(runstate.ErrUntrusted))
		trusting, err := runstate.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		_, err = trusting.Load("rcopy")
		Expect(err).NotTo(HaveOccurred(), "a store in pgdrill's own state dir does not check")
	})

	It("refuses a record file another account owns", func() {
		if os.Geteuid() != 0 {
			Skip("only root can give a file away")
		}
		Expect(os.Chown(path, 65534, 65534)).To(Succeed())
		_, err := store.Load("rcopy")
		Expect(err).To(MatchError(runstate.ErrUntrusted))
	})

	It("refuses a link, which could lend it another file's owner, and a FIFO without blocking", func() {
		Expect(os.Rename(path, filepath.Join(dir, "elsewhere"))).To(Succeed())
		Expect(os.Symlink(filepath.Join(dir, "elsewhere"), path)).To(Succeed())
		_, err := store.Load("rcopy")
		Expect(err).To(MatchError(syscall.ELOOP))
		Expect(os.Remove(path)).To(Succeed())
		Expect(syscall.Mkfifo(path, 0o600)).To(Succeed())
		_, err = store.Load("rcopy")
		Expect(err).To(MatchError(runstate.ErrUntrusted))
	})
})

// startTree starts a shell running script, and kills it and everything below it after the spec.
func startTree(script string) *exec.Cmd {
	GinkgoHelper()
	cmd := exec.Command("sh", "-c", script)
	Expect(cmd.Start()).To(Succeed())
	DeferCleanup(func() {
		for _, pid := range runstate.Descendants(cmd.Process.Pid) {
			_ = syscallKill(pid)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return cmd
}
