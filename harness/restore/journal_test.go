package restore_test

import (
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/restore"
)

var _ = Describe("a restore journal", func() {
	It("reads back what a killed run wrote, leaving out the line it died writing, and refuses another run's", func() {
		path := filepath.Join(GinkgoT().TempDir(), "journal.jsonl")
		j, err := restore.OpenJournal(path, "r1")
		Expect(err).NotTo(HaveOccurred())
		j.PhaseBegan(restore.PhaseStart{Name: restore.PhaseMerge, Shard: 1})
		Expect(j.Close()).To(Succeed())
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		Expect(err).NotTo(HaveOccurred())
		_, err = f.WriteString(`{"event":"tenant-begun","run_id":"r1","ten`) // the crash, mid-write
		Expect(err).NotTo(HaveOccurred())
		Expect(f.Close()).To(Succeed())

		entries, err := restore.ReadJournal(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(ConsistOf(And(HaveField("Event", restore.JournalPhaseBegan), HaveField("Phase", restore.PhaseMerge),
			HaveField("Shard", 1), HaveField("RunID", "r1"))))
		_, err = restore.OpenJournal(path, "r2")
		Expect(err).To(MatchError(ContainSubstring("it is run r1's, not r2's")))

		By("going on after the last whole line when run again")
		j, err = restore.OpenJournal(path, "r1")
		Expect(err).NotTo(HaveOccurred())
		j.PhaseEnded(restore.PhaseMerge, 1)
		Expect(j.Close()).To(Succeed())
		entries, err = restore.ReadJournal(path)
		Expect(err).NotTo(HaveOccurred())
		Expect(entries).To(HaveLen(2))
		Expect(entries[1].Event).To(Equal(restore.JournalPhaseEnded))
	})
})
