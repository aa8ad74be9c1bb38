package local_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/runstate"
)

// footprint is everything a cluster leaves on the machine while it runs.
type footprint struct {
	runDir  string
	procs   []runstate.Process
	ports   []int
	sockets []string
	shmIDs  []int
}

// footprintOf reads the cluster's footprint from its run record, checking it is real: every
// recorded server runs, with its socket, in the run's directory.
func footprintOf(c cluster.Cluster) footprint {
	GinkgoHelper()
	f := recordedFootprint(c)
	for _, p := range f.procs {
		Expect(p.Alive()).To(BeTrue(), "server %d should run", p.PID)
	}
	for _, s := range f.sockets {
		Expect(s).To(BeAnExistingFile())
	}
	Expect(f.runDir).To(BeADirectory())
	return f
}

// recordedFootprint reads the cluster's footprint from its run record as it is, whatever of it
// runs: a partial cluster's too.
func recordedFootprint(c cluster.Cluster) footprint {
	GinkgoHelper()
	rec, err := provider.Store().Load(c.RunID())
	Expect(err).NotTo(HaveOccurred())
	return footprintFrom(rec)
}

// footprintFrom reads a run's footprint from its record.
func footprintFrom(rec runstate.Record) footprint {
	GinkgoHelper()
	Expect(rec.Dirs).To(HaveLen(1))
	f := footprint{runDir: rec.Dirs[0]}
	for _, s := range rec.Servers {
		f.procs = append(f.procs, s.Process)
		f.ports = append(f.ports, s.Port)
		f.sockets = append(f.sockets, filepath.Join(filepath.Dir(s.DataDir), fmt.Sprintf(".s.PGSQL.%d", s.Port)))
		if id, ok := shmID(s.DataDir); ok {
			f.shmIDs = append(f.shmIDs, id)
		}
	}
	return f
}

// shmID reads the System V segment id from postmaster.pid, if the server has one.
func shmID(dataDir string) (int, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	lines := strings.Split(string(data), "\n")
	if err != nil || len(lines) < 7 {
		return 0, false
	}
	var key, id int
	if _, err := fmt.Sscan(lines[6], &key, &id); err != nil {
		return 0, false
	}
	return id, true
}

// expectGone asserts that nothing of the footprint is left.
func expectGone(f footprint) {
	GinkgoHelper()
	Expect(f.left()).To(BeEmpty())
}

// left lists what of the footprint is still there: processes (and any process still naming the
// run's directory), listening ports, sockets, the directory, shared memory.
func (f footprint) left() []string {
	var out []string
	for _, p := range f.procs {
		if p.Alive() {
			out = append(out, fmt.Sprintf("process %d", p.PID))
		}
	}
	for _, pid := range processesMentioning(f.runDir) {
		out = append(out, fmt.Sprintf("process %d naming %s", pid, f.runDir))
	}
	for _, port := range f.ports {
		if conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			conn.Close()
			out = append(out, fmt.Sprintf("port %d", port))
		}
	}
	for _, s := range f.sockets {
		if _, err := os.Stat(s); err == nil {
			out = append(out, "socket "+s)
		}
	}
	if _, err := os.Stat(f.runDir); err == nil {
		out = append(out, "directory "+f.runDir)
	}
	for _, id := range f.shmIDs {
		if shmExists(id) {
			out = append(out, fmt.Sprintf("shared memory segment %d", id))
		}
	}
	return out
}

// processesMentioning lists pids whose command line mentions s.
func processesMentioning(s string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil {
			continue
		}
		if args, err := runstate.CommandLine(pid); err == nil && strings.Contains(strings.Join(args, " "), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func shmExists(id int) bool {
	data, err := os.ReadFile("/proc/sysvipc/shm")
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > 1 && f[1] == fmt.Sprint(id) {
			return true
		}
	}
	return false
}

// ownerOf returns the uid a process runs as.
func ownerOf(pid int) uint32 {
	GinkgoHelper()
	st, err := os.Stat(fmt.Sprintf("/proc/%d", pid))
	Expect(err).NotTo(HaveOccurred())
	return st.Sys().(*syscall.Stat_t).Uid
}
