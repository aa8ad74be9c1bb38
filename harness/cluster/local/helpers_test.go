package local_test

import (
	"context"
	"errors"
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

func servers(c cluster.Cluster) []cluster.Server {
	return append([]cluster.Server{c.Catalog()}, c.Shards()...)
}

// footprint is everything a cluster leaves on the machine while it runs.
type footprint struct {
	runDir  string
	procs   []runstate.Process
	ports   []int
	sockets []string
	shmIDs  []int
}

// footprintOf reads the cluster's footprint from its run record, checking it is real.
func footprintOf(c cluster.Cluster) footprint {
	GinkgoHelper()
	rec, err := provider.Store().Load(c.RunID())
	Expect(err).NotTo(HaveOccurred())
	return footprintFrom(rec)
}

// footprintFrom reads a run's footprint from its record, checking it is real.
func footprintFrom(rec runstate.Record) footprint {
	GinkgoHelper()
	Expect(rec.Dirs).To(HaveLen(1))
	f := footprint{runDir: rec.Dirs[0]}
	for _, s := range rec.Servers {
		Expect(s.Process.Alive()).To(BeTrue(), "server %s should run", s.Name)
		f.procs = append(f.procs, s.Process)
		f.ports = append(f.ports, s.Port)
		sock := filepath.Join(filepath.Dir(s.DataDir), fmt.Sprintf(".s.PGSQL.%d", s.Port))
		Expect(sock).To(BeAnExistingFile())
		f.sockets = append(f.sockets, sock)
		f.shmIDs = append(f.shmIDs, shmID(s.DataDir))
	}
	Expect(f.runDir).To(BeADirectory())
	return f
}

// shmID reads the System V segment id from postmaster.pid.
func shmID(dataDir string) int {
	GinkgoHelper()
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	Expect(err).NotTo(HaveOccurred())
	var key, id int
	_, err = fmt.Sscan(strings.Split(string(data), "\n")[6], &key, &id)
	Expect(err).NotTo(HaveOccurred())
	return id
}

// expectGone asserts that nothing of the footprint is left: no process (nor any process still
// naming the run's directory), no listening port, no socket, no directory, no shared memory.
func expectGone(f footprint) {
	GinkgoHelper()
	for _, p := range f.procs {
		Expect(p.Alive()).To(BeFalse(), "process %d should be gone", p.PID)
	}
	Expect(processesMentioning(f.runDir)).To(BeEmpty())
	for _, port := range f.ports {
		conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			conn.Close()
		}
		Expect(err).To(HaveOccurred(), "port %d should be closed", port)
	}
	for _, s := range f.sockets {
		Expect(s).NotTo(BeAnExistingFile())
	}
	Expect(f.runDir).NotTo(BeADirectory())
	for _, id := range f.shmIDs {
		Expect(shmExists(id)).To(BeFalse(), "shared memory segment %d should be removed", id)
	}
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

// isTimeout reports whether err came from a deadline, as a paused server produces.
func isTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || strings.Contains(fmt.Sprint(err), "timeout")
}
