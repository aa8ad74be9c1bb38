package drilltest

import (
	"errors"
	"os"
	"strconv"
	"strings"

	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/runstate"
)

// ReadProcesses reads the "PID START_TIME" lines a spec's child processes wrote about themselves
// (`echo $$ $(cut -d' ' -f22 /proc/$$/stat)`); a missing file has none. With the start time, a
// spec can tell the very process apart from a later one given the same pid.
func ReadProcesses(path string) []runstate.Process {
	ginkgo.GinkgoHelper()
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	gomega.Expect(err).NotTo(gomega.HaveOccurred())
	var out []runstate.Process
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		gomega.Expect(f).To(gomega.HaveLen(2), "line %q", line)
		pid, err := strconv.Atoi(f[0])
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		start, err := strconv.ParseUint(f[1], 10, 64)
		gomega.Expect(err).NotTo(gomega.HaveOccurred())
		out = append(out, runstate.Process{PID: pid, StartTime: start})
	}
	return out
}

// ProcessExists reports whether the very process p is still in the process table, running or a
// zombie: what "nothing is left behind" must rule out.
func ProcessExists(p runstate.Process) bool {
	now, err := runstate.Identify(p.PID)
	return err == nil && now.StartTime == p.StartTime
}
