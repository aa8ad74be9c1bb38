package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgdrill/pgdrill/harness/cluster"
	"github.com/pgdrill/pgdrill/harness/image"
)

// BenchmarkUpContainers times `pgdrill up --provider container --detach --tenants 0` of a
// catalog and 4 shards against the same `pgdrill up` on the local provider, and against the raw
// baseline: `docker run -d` of the same image, one container per server, all five in parallel,
// each until it takes a connection. Same machine, same run; it reports the three times and the
// ratios x-local and x-docker-run. Run it with `make bench`; it is skipped without the image.
func BenchmarkUpContainers(b *testing.B) {
	const servers = 5 // catalog + 4 shards
	needImage(b)
	bin, state := benchBinary(b)
	up := func(provider string) {
		out := runBench(b, bin, state, "up", "--provider", provider, "--detach", "--shards", fmt.Sprint(servers-1), "--tenants", "0", "-o", "json")
		var d cluster.Description
		if err := json.Unmarshal(out, &d); err != nil {
			b.Fatalf("decode pgdrill up output: %v", err)
		}
		runBench(b, bin, state, "down", d.RunID)
	}
	up("local") // warm-up: builds the local template once, as any first run does
	var containers, locals, raw time.Duration
	for b.Loop() {
		containers += timed(func() { up("container") })
		locals += timed(func() { up("local") })
		raw += timed(func() { dockerRun(b, servers) })
	}
	n := float64(b.N)
	b.ReportMetric(containers.Seconds()/n, "container-s/op")
	b.ReportMetric(locals.Seconds()/n, "local-s/op")
	b.ReportMetric(raw.Seconds()/n, "docker-run-s/op")
	b.ReportMetric(containers.Seconds()/locals.Seconds(), "x-local")
	b.ReportMetric(containers.Seconds()/raw.Seconds(), "x-docker-run")
}

// BenchmarkDefaultDrillContainers times the default drill (`pgdrill run wrong-id-deletion`, as
// the README's first command runs it) on the container provider against the local one, in the
// same run, and reports the ratio x-local.
func BenchmarkDefaultDrillContainers(b *testing.B) {
	needImage(b)
	bin, state := benchBinary(b)
	out := b.TempDir()
	drill := func(provider string) {
		runBench(b, bin, state, "run", "wrong-id-deletion", "--provider", provider, "--out", out, "-o", "json")
	}
	var containers, locals time.Duration
	for b.Loop() {
		containers += timed(func() { drill("container") })
		locals += timed(func() { drill("local") })
	}
	n := float64(b.N)
	b.ReportMetric(containers.Seconds()/n, "container-s/op")
	b.ReportMetric(locals.Seconds()/n, "local-s/op")
	b.ReportMetric(containers.Seconds()/locals.Seconds(), "x-local")
}

// needImage skips a benchmark when the container provider's image is not built.
func needImage(b *testing.B) {
	st, err := image.Inspect(b.Context(), image.DefaultSpec())
	if err != nil || !st.Present {
		b.Skipf("image %s is not built (pgdrill image build): %v", image.DefaultTag, err)
	}
}

// benchBinary builds pgdrill and gives it a state dir of its own.
func benchBinary(b *testing.B) (bin, state string) {
	bin = filepath.Join(b.TempDir(), "pgdrill")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/pgdrill/pgdrill/cmd/pgdrill").CombinedOutput(); err != nil {
		b.Fatalf("build pgdrill: %v: %s", err, out)
	}
	return bin, b.TempDir()
}

// runBench runs pgdrill with the benchmark's state dir and returns its standard output.
func runBench(b *testing.B, bin, state string, args ...string) []byte {
	cmd := exec.Command(bin, append(args, "--log-level", "warn")...)
	cmd.Env = append(os.Environ(), "PGDRILL_STATE_DIR="+state)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		b.Fatalf("pgdrill %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// timed returns how long f took.
func timed(f func()) time.Duration {
	start := time.Now()
	f()
	return time.Since(start)
}

// dockerRun is the raw baseline of a container cluster: a network of their own, then n
// containers of the image on it started with `docker run -d`, in parallel, each until a
// connection to its published port succeeds; then removed (not timed).
func dockerRun(b *testing.B, n int) {
	nw := fmt.Sprintf("pgdrill-bench-%d", os.Getpid())
	if out, err := exec.Command("docker", "network", "create", "--label", "dev.pgdrill.bench=1", nw).CombinedOutput(); err != nil {
		b.Fatalf("docker network create: %v: %s", err, out)
	}
	defer func() { _ = exec.Command("docker", "network", "rm", nw).Run() }()
	ids := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			out, err := exec.Command("docker", "run", "-d", "--rm", "--label", "dev.pgdrill.bench=1", "--network", nw,
				"-e", "POSTGRES_PASSWORD=bench", "-p", "127.0.0.1::5432", image.DefaultTag, "postgres", "-c", "fsync=off").Output()
			if err != nil {
				errs[i] = fmt.Errorf("docker run: %w", err)
				return
			}
			ids[i] = strings.TrimSpace(string(out))
			port, err := exec.Command("docker", "port", ids[i], "5432/tcp").Output()
			if err != nil {
				errs[i] = fmt.Errorf("docker port: %w", err)
				return
			}
			addr := strings.TrimSpace(strings.Split(string(port), "\n")[0])
			errs[i] = awaitConnection(b.Context(), "postgres://postgres:bench@"+addr+"/postgres?sslmode=disable")
		})
	}
	wg.Wait()
	for _, id := range ids {
		if id != "" {
			_ = exec.Command("docker", "rm", "-f", "-v", id).Run()
		}
	}
	for _, err := range errs {
		if err != nil {
			b.Fatal(err)
		}
	}
}

// awaitConnection polls dsn until a connection succeeds (the image's init is done) or a
// minute passes.
func awaitConnection(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("connect to %s: %w", dsn, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
