package drill_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/drill"
	"github.com/pgdrill/pgdrill/harness/drilltest"
	"github.com/pgdrill/pgdrill/harness/objective"
	"github.com/pgdrill/pgdrill/harness/score"
)

// segmentName matches a WAL segment file in an archive.
var segmentName = regexp.MustCompile(`^[0-9A-F]{24}$`)

// runDir is the work directory of the one run the suite's provider has recorded.
func runDir() string {
	GinkgoHelper()
	recs, err := provider.Store().List()
	Expect(err).NotTo(HaveOccurred())
	Expect(recs).To(HaveLen(1), "one drill runs at a time")
	return recs[0].Dirs[0]
}

// drillBreaking runs the small drill, breaking its backups with breakBackups just before the drill
// checks them (after the incident, as a storage fault would).
func drillBreaking(ctx context.Context, breakBackups func(runDir string)) *drill.Outcome {
	GinkgoHelper()
	return drill.Run(ctx, drill.Config{Scenario: smallScenario("shared", 31), Provider: provider, Log: drilltest.DiscardLogger(),
		OnStep: func(step string) {
			if step == drill.StepBackups {
				breakBackups(runDir())
			}
		}})
}

var _ = Describe("a drill whose backups are broken", func() {
	It("FAILs naming the WAL segment missing from the archive, and does not attempt the restore", func(ctx context.Context) {
		var removed string
		out := drillBreaking(ctx, func(dir string) {
			archive := filepath.Join(dir, "shard-0", "archive")
			entries, err := os.ReadDir(archive)
			Expect(err).NotTo(HaveOccurred())
			var segments []string
			for _, e := range entries {
				if segmentName.MatchString(e.Name()) {
					segments = append(segments, e.Name())
				}
			}
			slices.Sort(segments)
			Expect(segments).NotTo(BeEmpty())
			removed = segments[len(segments)-1] // written after the base backup: the chain needs it
			Expect(os.Remove(filepath.Join(archive, removed))).To(Succeed())
		})
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(out.Reason).To(ContainSubstring("the backups a restore needs are broken"))
		Expect(out.Reason).To(ContainSubstring(removed))
		Expect(out.Backups).To(ContainElement(And(HaveField("Shard", "shard-0"), HaveField("Missing", ConsistOf(removed)))))
		Expect(out.Restore).To(BeNil(), "nothing to restore from")
		Expect(out.Events).NotTo(ContainElement(HaveField("Name", drill.StepRestore)))
		Expect(out.Measures[objective.Backups]).To(Equal(objective.Status(false)))
		Expect(drill.Report(out).Backups).To(ContainElement(HaveField("Problem", ContainSubstring(removed))))
	})

	It("FAILs naming the base backup file that does not verify", func(ctx context.Context) {
		out := drillBreaking(ctx, func(dir string) {
			backups, err := filepath.Glob(filepath.Join(dir, "backups", "shard-1-*"))
			Expect(err).NotTo(HaveOccurred())
			Expect(backups).To(HaveLen(1))
			// Same size, other bytes: only a checksum can tell.
			Expect(os.WriteFile(filepath.Join(backups[0], "PG_VERSION"), []byte("99\n"), 0o600)).To(Succeed())
		})
		Expect(out.Verdict).To(Equal(score.Fail), out.Reason)
		Expect(out.Reason).To(And(ContainSubstring("shard-1"), ContainSubstring("does not verify"), ContainSubstring("PG_VERSION")))
		Expect(out.Restore).To(BeNil())
	})
})
