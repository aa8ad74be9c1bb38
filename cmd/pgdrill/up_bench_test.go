package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/cluster/local"
)

// BenchmarkUp times `pgdrill up --detach --tenants 0` (empty servers: the fill has its own
// benchmark) of a catalog and 4 shards against the raw sequence a
// user would script for the same five servers — initdb, then pg_ctl start -w, per server, all
// five in parallel — on the same machine, in the same work root, in the same run. It reports
// both times and their ratio (goal: ≤ 0.5×). Run it with `make bench`.
func BenchmarkUp(b *testing.B) {
	const servers = 5 // catalog + 4 shards
	bin, state := benchBinary(b)
	up := func() cluster.Description {
		cmd := exec.Command(bin, "up", "--detach", "--shards", strconv.Itoa(servers-1), "--tenants", "0", "-o", "json", "--log-level", "warn")
		cmd.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+state)
		out, err := cmd.Output()
		if err != nil {
			b.Fatalf("pgdrill up: %v", err)
		}
		var d cluster.Description
		if err := json.Unmarshal(out, &d); err != nil {
			b.Fatalf("decode pgdrill up output: %v", err)
		}
		return d
	}
	down := func(runID string) {
		cmd := exec.Command(bin, "down", runID, "--log-level", "warn")
		cmd.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+state)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("pgdrill down: %v: %s", err, out)
		}
	}
	down(up().RunID) // warm-up: builds the cached template once, as any first run does

	raw := newRawCluster(b, servers)
	var ours, theirs time.Duration
	for b.Loop() {
		start := time.Now()
		d := up()
		ours += time.Since(start)
		down(d.RunID)

		start = time.Now()
		raw.start(b)
		theirs += time.Since(start)
		raw.stop(b)
	}
	n := float64(b.N)
	b.ReportMetric(ours.Seconds()/n, "pgdrill-s/op")
	b.ReportMetric(theirs.Seconds()/n, "raw-s/op")
	b.ReportMetric(ours.Seconds()/theirs.Seconds(), "x-raw")
}

// rawCluster is the hand-scripted baseline: initdb + pg_ctl start -w per server, in parallel,
// as the same unprivileged user pgdrill runs servers as.
type rawCluster struct {
	bins  local.Binaries
	cred  *syscall.Credential
	root  string
	dirs  []string
	ports []int
}

func newRawCluster(b *testing.B, n int) *rawCluster {
	p, err := local.New(b.Context())
	if err != nil {
		b.Fatal(err)
	}
	root, err := os.MkdirTemp(p.WorkRoot(), "bench-raw-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(root) })
	r := &rawCluster{bins: p.Binaries(), root: root}
	if u := p.RunUser(); u.Switch {
		r.cred = &syscall.Credential{Uid: u.UID, Gid: u.GID}
		if err := os.Chown(root, int(u.UID), int(u.GID)); err != nil {
			b.Fatal(err)
		}
	}
	for i := range n {
		r.dirs = append(r.dirs, filepath.Join(root, fmt.Sprintf("s%d", i)))
		r.ports = append(r.ports, 0)
	}
	return r
}

func (r *rawCluster) run(name string, args ...string) error {
	cmd := exec.Command(r.bins.Path(name), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: r.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", name, err, out)
	}
	return nil
}

func (r *rawCluster) start(b *testing.B) {
	var wg sync.WaitGroup
	errs := make([]error, len(r.dirs))
	for i, dir := range r.dirs {
		wg.Go(func() {
			port, err := local.FreePort()
			if err != nil {
				errs[i] = err
				return
			}
			r.ports[i] = port
			if errs[i] = r.run("initdb", "-D", dir, "-A", "trust", "-U", "postgres", "--no-sync"); errs[i] != nil {
				return
			}
			opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off", port, dir)
			errs[i] = r.run("pg_ctl", "-D", dir, "-o", opts, "-l", dir+".log", "-w", "start")
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

func (r *rawCluster) stop(b *testing.B) {
	for _, dir := range r.dirs {
		if err := r.run("pg_ctl", "-D", dir, "-m", "fast", "-w", "stop"); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(dir)
		os.Remove(dir + ".log")
	}
}
